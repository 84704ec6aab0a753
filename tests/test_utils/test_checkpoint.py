# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Checkpoint loading (mmseg_spixreg.utils.checkpoint): weights-only with an allow-list, scoped to
mmengine's checkpoint loaders; mmengine's own checkpoints and plain state dicts load; atomic writes.

That every entry point (load_from, --resume, tools/test.py, Pretrained init) refuses a malicious
checkpoint: tests/test_tools/test_checkpoint_safety.py.
"""
import os
import os.path as osp
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from tests.utils import WritesMarkerViaTofile, evil_checkpoint


def test_payload_runs_only_with_the_explicit_opt_in(tmp_path, monkeypatch):
    """The same payload does run when the user trusts the file: the refusal (here and in
    tests/test_tools/test_checkpoint_safety.py) is real."""
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmseg_spixreg  # noqa: F401
    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = evil_checkpoint(tmp_path)
    monkeypatch.delenv('MMSEG_SPIXREG_TRUST_CHECKPOINTS', raising=False)
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        CheckpointLoader.load_checkpoint(evil, map_location='cpu')
    assert not osp.exists(marker)
    monkeypatch.setenv('MMSEG_SPIXREG_TRUST_CHECKPOINTS', '1')
    CheckpointLoader.load_checkpoint(evil, map_location='cpu')
    assert osp.exists(marker)


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path, monkeypatch):
    """``builtins.getattr`` is allowed only as a stand-in returning HistoryBuffer's statistics
    methods: ``getattr(ndarray, 'tofile')`` (a file write) is refused."""
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmseg_spixreg  # noqa: F401
    from mmseg_spixreg.utils import UnsafeCheckpointError
    monkeypatch.delenv('MMSEG_SPIXREG_TRUST_CHECKPOINTS', raising=False)
    evil, marker = evil_checkpoint(tmp_path, WritesMarkerViaTofile)
    with pytest.raises(UnsafeCheckpointError, match="getattr.*'tofile'.*not allowed"):
        CheckpointLoader.load_checkpoint(evil, map_location='cpu')
    assert not osp.exists(marker)


def test_mmengine_objects_load_and_allow_list_is_scoped(tmp_path, monkeypatch):
    """numpy arrays / scalars and HistoryBuffer (message hub) load; torch.load's own allow-list
    is unchanged outside the loaders; a missing file is named."""
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmseg_spixreg  # noqa: F401
    monkeypatch.delenv('MMSEG_SPIXREG_TRUST_CHECKPOINTS', raising=False)
    buf = HistoryBuffer()
    buf.update(0.5)
    buf.update(1.5)
    path = str(tmp_path / 'mm.pth')
    torch.save(
        {
            'meta': {
                'arr': np.arange(3, dtype=np.int64),
                'f': np.float32(2.0)
            },
            'message_hub': {
                'log_scalars': {
                    'train/loss': buf
                }
            },
            'state_dict': OrderedDict(w=torch.ones(2))
        }, path)
    before = set(map(str, torch.serialization.get_safe_globals()))
    out = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert set(map(str, torch.serialization.get_safe_globals())) == before
    np.testing.assert_array_equal(out['meta']['arr'], np.arange(3))
    assert out['meta']['f'] == np.float32(2.0)
    assert out['message_hub']['log_scalars']['train/loss'].statistics('mean') == 1.0
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch's default outside the checkpoint loaders
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))
    # every scheme (local, http(s), torchvision, open-mmlab, ...) runs with the allow-list
    assert all(
        getattr(loader, '_mmseg_spixreg_safe', False)
        for loader in CheckpointLoader._schemes.values())


def test_remote_scheme_loader_refuses_and_allows(tmp_path, monkeypatch):
    """A remote-scheme loader (wrapped mmengine loader that calls torch.load with torch's
    default) gets the same allow-list and refusal, with the download-first advice."""
    from mmseg_spixreg.utils.checkpoint import UnsafeCheckpointError, _weights_only_loader
    monkeypatch.delenv('MMSEG_SPIXREG_TRUST_CHECKPOINTS', raising=False)

    def load_from_fake_http(filename, map_location=None):  # what mmengine's loaders do
        return torch.load(filename, map_location=map_location)

    loader = _weights_only_loader(load_from_fake_http)
    evil, marker = evil_checkpoint(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match='download it'):
        loader(evil, 'cpu')
    assert not osp.exists(marker)
    path = str(tmp_path / 'np.pth')
    torch.save({'meta': {'arr': np.zeros(2)}}, path)
    assert loader(path, 'cpu')['meta']['arr'].shape == (2, )


def test_torchvision_state_dict_loads_as_pretrained_backbone(tmp_path):
    """A plain state dict as torchvision publishes it loads through init_cfg=Pretrained."""
    import torchvision
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_spixreg  # noqa: F401
    init_default_scope('mmseg')
    torch.manual_seed(1)
    ref = torchvision.models.resnet34(weights=None).state_dict()
    path = str(tmp_path / 'resnet34-torchvision.pth')
    torch.save(ref, path)
    backbone = MODELS.build(
        dict(type='DCNResNet', depth=34, init_cfg=dict(type='Pretrained', checkpoint=path)))
    backbone.init_weights()
    sd = backbone.state_dict()
    for key in ('conv1.weight', 'layer1.0.conv1.weight', 'layer2.0.conv1.weight',
                'layer3.5.bn2.running_var'):
        torch.testing.assert_close(sd[key], ref[key], rtol=0, atol=0, msg=key)


def test_checkpoint_loader_is_narrow(tmp_path):
    """The plug-in makes mmengine's local loader safe (allow-list) without changing torch.load."""
    import pickle

    import numpy as np
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmseg_spixreg  # noqa: F401
    from mmseg_spixreg.utils import load_from_local_safe

    assert CheckpointLoader._get_checkpoint_loader('/some/local.pth') is load_from_local_safe
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'arr': np.zeros(3)}, 'state_dict': {}}, path)
    # torch's own default (weights_only=True since 2.6) is untouched for everyone else
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    out = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert out['meta']['arr'].shape == (3, )
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_from_local_safe(str(tmp_path / 'missing.pth'))


def test_atomic_write_bytes_replaces_whole_file(tmp_path):
    from mmseg_spixreg.utils import atomic_write_bytes
    path = str(tmp_path / 'last_checkpoint')
    atomic_write_bytes('a' * 1000, path)
    atomic_write_bytes(b'new', path)
    with open(path, 'rb') as f:
        assert f.read() == b'new'
    assert os.listdir(tmp_path) == ['last_checkpoint']  # no temporary file left
