# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Checkpoint loading is weights-only with an allow-list: a malicious checkpoint is refused by every
entry point (load_from, --resume, tools/test.py, Pretrained init) and runs nothing; mmengine's
own checkpoints and plain state dicts load."""
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT

DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


class _WritesMarkerViaExec:
    """Unpickling it runs ``exec`` that creates ``marker`` (a code-execution payload)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('unpickled')", )


class _WritesMarkerViaTofile:
    """Unpickling it calls ``numpy.ndarray.tofile`` (pickled as ``builtins.getattr(ndarray,
    'tofile')``): numpy types are allowed, so this probes the restricted getattr stand-in."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return np.ndarray.tofile, (np.zeros(2), self.marker)


def _evil_checkpoint(tmp_path, payload=_WritesMarkerViaExec):
    marker = str(tmp_path / 'pwned.txt')
    path = str(tmp_path / 'evil.pth')
    torch.save(
        {
            'state_dict': OrderedDict(w=torch.zeros(2)),
            'meta': {
                'iter': 2,
                'payload': payload(marker)
            }
        }, path)
    return path, marker


def _opts(root):
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=1',
        'model.data_preprocessor.size=(64,64)'
    ]


def _run_failing(args, env=None):
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env.pop('MMSEG_SPIXREG_TRUST_CHECKPOINTS', None)
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900)
    assert proc.returncode != 0, f'{args} accepted a malicious checkpoint:\n{proc.stdout[-3000:]}'
    return proc.stdout + proc.stderr


@pytest.mark.parametrize('entry', ['load_from', 'resume', 'test.py', 'Pretrained'])
def test_malicious_checkpoint_is_refused_by_every_entry_point(entry, tmp_path, synthetic_root):
    evil, marker = _evil_checkpoint(tmp_path)
    work = str(tmp_path / 'work')
    train = ['tools/train.py', DEMO_CFG, '--work-dir', work]
    opts = ['--cfg-options'] + _opts(synthetic_root)
    if entry == 'load_from':
        args = train + opts + [f'load_from={evil}']
    elif entry == 'resume':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(evil)
        args = train + ['--resume'] + opts
    elif entry == 'test.py':
        args = ['tools/test.py', DEMO_CFG, evil, '--work-dir', work] + opts
    else:
        # the demo config has init_cfg=None (random init): replace it
        args = train + opts + [
            'model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={evil}'
        ]
    log = _run_failing(args)
    assert f'refused to load checkpoint {evil}' in log, log[-3000:]
    assert 'offending global(s): builtins.exec' in log, log[-3000:]
    assert 'MMSEG_SPIXREG_TRUST_CHECKPOINTS=1' in log
    assert not osp.exists(marker), 'the checkpoint ran code while being loaded'


def test_payload_runs_only_with_the_explicit_opt_in(tmp_path, monkeypatch):
    """The same payload does run when the user trusts the file: the refusal above is real."""
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmseg_spixreg  # noqa: F401
    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = _evil_checkpoint(tmp_path)
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
    evil, marker = _evil_checkpoint(tmp_path, _WritesMarkerViaTofile)
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
    evil, marker = _evil_checkpoint(tmp_path)
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
