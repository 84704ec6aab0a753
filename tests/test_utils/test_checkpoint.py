# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Checkpoint loading (mmseg_spixreg.utils.checkpoint) in one process: every URL scheme through
torch.hub's cache, init_model, MMSegInferencer(model=None), init_cfg Pretrained; the numpy /
HistoryBuffer stand-ins; stored config texts; unreadable files; atomic writes.

Every attack writes a marker file if it runs; each test checks the refusal, that the marker does
not exist, and (positive control) that the same payload does run with the opt-in
``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1`` (or through mmengine's own loader), so the refusal is real.
The routes that start processes (tools/train.py load_from / --resume, tools/test.py with a URL):
tests/test_tools/test_checkpoint_safety.py.
"""
import os
import os.path as osp
import pickle
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch

from tests.utils import (DEMO_CFG, REPO_ROOT, NdarrayFromBytes, ObjectFieldDtype,
                         WritesMarkerViaTofile, config_text_payload, evil_checkpoint,
                         history_buffer_method_swap)

TRUST = 'MMSEG_SPIXREG_TRUST_CHECKPOINTS'

# URL of each scheme and the file torch.hub caches it under (mmengine's model lists)
URL_SCHEMES = [
    ('https://example.invalid/models/evil-0123abcd.pth', 'evil-0123abcd.pth'),
    ('torchvision://resnet34', 'resnet34-b627a593.pth'),
    ('modelzoo://resnet34', 'resnet34-b627a593.pth'),
    ('open-mmlab://vgg16_caffe', 'vgg16_caffe-292e1171.pth'),
    ('mmcls://vgg11', 'vgg11_batch256_imagenet_20210208-4271cd6c.pth'),
]


@pytest.fixture
def untrusted(monkeypatch):
    import mmseg_spixreg  # noqa: F401  (registers the loaders)
    monkeypatch.delenv(TRUST, raising=False)
    return monkeypatch


@pytest.fixture
def hub(tmp_path, untrusted):
    """TORCH_HOME in tmp_path: its hub/checkpoints folder (where torch.hub caches downloads)."""
    untrusted.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    folder = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    folder.mkdir(parents=True)
    return folder


def _load(source):
    from mmengine.runner.checkpoint import CheckpointLoader
    return CheckpointLoader.load_checkpoint(source, map_location='cpu')


@pytest.mark.parametrize('url,cached', URL_SCHEMES, ids=[u.split(':')[0] for u, _ in URL_SCHEMES])
def test_url_checkpoints_are_loaded_weights_only_from_the_hub_cache(url, cached, tmp_path, hub):
    from mmengine.runner.checkpoint import load_from_http

    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = evil_checkpoint(tmp_path, path=str(hub / cached))
    if url.startswith('https'):  # the attack: mmengine's own loader unpickles the cached file
        load_from_http(url, map_location='cpu')
        assert osp.exists(marker)
        os.remove(marker)
    with pytest.raises(UnsafeCheckpointError, match='offending global.*builtins.exec') as err:
        _load(url)
    assert f'refused to load checkpoint {url}' in str(err.value)
    assert f'downloaded to {evil}' in str(err.value)  # and the advice names the local file
    assert not osp.exists(marker)
    # a plain state dict in the cache loads (no download: the file is there)
    torch.save(OrderedDict(w=torch.arange(3.)), evil)
    out = _load(url)
    if url.startswith('mmcls'):  # mmengine's mmcls processing still runs on it
        assert list(out) == ['state_dict']
    else:
        torch.testing.assert_close(out['w'], torch.arange(3.))


def test_url_payload_runs_with_the_opt_in_on_the_downloaded_file(tmp_path, hub, untrusted):
    evil, marker = evil_checkpoint(tmp_path, path=str(hub / 'resnet34-b627a593.pth'))
    untrusted.setenv(TRUST, '1')
    _load(evil)
    assert osp.exists(marker)


def test_pretrained_init_cfg_torchvision_url_is_refused(tmp_path, hub):
    """Every paper config's backbone: init_cfg=dict(type='Pretrained',
    checkpoint='torchvision://resnet34')."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_spixreg.utils import UnsafeCheckpointError
    init_default_scope('mmseg')
    _, marker = evil_checkpoint(tmp_path, path=str(hub / 'resnet34-b627a593.pth'))
    backbone = MODELS.build(
        dict(
            type='DCNResNet',
            depth=34,
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')))
    with pytest.raises(UnsafeCheckpointError, match='torchvision://resnet34'):
        backbone.init_weights()
    assert not osp.exists(marker)


def test_init_model_refuses_and_opt_in_runs(tmp_path, untrusted):
    from mmseg.apis import init_model

    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = evil_checkpoint(tmp_path)
    cfg = osp.join(REPO_ROOT, DEMO_CFG)
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        init_model(cfg, evil, device='cpu')
    assert not osp.exists(marker)
    untrusted.setenv(TRUST, '1')
    init_model(cfg, evil, device='cpu')
    assert osp.exists(marker)


def _config_payload_checkpoint(tmp_path, where):
    marker = str(tmp_path / 'pwned.txt')
    ckpt = {'state_dict': OrderedDict(w=torch.zeros(1)), 'meta': {}}
    if where == 'meta':
        ckpt['meta']['cfg'] = config_text_payload(marker)
    else:
        ckpt['message_hub'] = {'runtime_info': {'cfg': config_text_payload(marker)}}
    path = str(tmp_path / 'cfg_payload.pth')
    torch.save(ckpt, path)
    return path, marker


@pytest.mark.parametrize('where', ['meta', 'message_hub'])
def test_inferencer_without_config_does_not_execute_the_stored_config(where, tmp_path, untrusted):
    """MMSegInferencer(model=None, weights=CKPT) executes meta['cfg'] (or the message hub's
    runtime_info['cfg']) in mmengine; here it asks for the config file instead."""
    from mmseg.apis import MMSegInferencer
    path, marker = _config_payload_checkpoint(tmp_path, where)
    with pytest.raises(ValueError, match='not executed.*Pass the config file') as err:
        MMSegInferencer(model=None, weights=path, device='cpu')
    assert f'weights={path!r}' in str(err.value)
    assert not osp.exists(marker)
    untrusted.setenv(TRUST, '1')  # a trusted file: mmengine's behaviour, the text runs
    with pytest.raises(Exception):  # (the payload's model is not buildable)
        MMSegInferencer(model=None, weights=path, device='cpu')
    assert osp.exists(marker)


def test_stored_config_texts_are_replaced_and_gpu_ids_read_without_executing(tmp_path, untrusted):
    marker = str(tmp_path / 'pwned.txt')
    for config, ids in [('gpu_ids = [0, 1]', [0, 1]), ('gpu_ids = range(0, 3)', [0, 1, 2]),
                        ('gpu_ids = (2, )', [2]), ('gpu_ids = list(x)', None),
                        ('gpu_ids = [0, "a"]', None), ('(((', None), ('', None)]:
        path = str(tmp_path / 'c.pth')
        text = f"open({marker!r}, 'w').write('x')\nimport os\n{config}\n"
        torch.save({'meta': {'config': text, 'iter': 1}, 'state_dict': {}}, path)
        meta = _load(path)['meta']
        assert meta.get('config') == (None if ids is None else f'gpu_ids = {ids!r}\n'), config
        assert meta['iter'] == 1
    assert not osp.exists(marker)


def test_mmengine_gpu_count_check_still_sees_the_stored_gpu_ids(tmp_path, untrusted):
    """Runner.resume compares the stored gpu_ids with the world size: it still does (on the ids
    ast read), without executing the stored text."""
    from mmengine.config import Config
    path = str(tmp_path / 'c.pth')
    torch.save({'meta': {'config': 'import os\ngpu_ids = [0, 1]\n'}}, path)
    text = _load(path)['meta']['config']
    assert Config.fromstring(text, file_format='.py').gpu_ids == [0, 1]


@pytest.mark.parametrize(
    'payload,match',
    [(NdarrayFromBytes, r'numpy.ndarray\(...\) cannot be called'),
     (ObjectFieldDtype, r"numpy dtype 'V8' is not allowed"),
     (lambda marker: np.array([None, 1], dtype=object), r"numpy dtype 'O8' is not allowed"),
     (lambda marker: np.zeros(2, dtype=[('a', 'f4'), ('b', 'i4')]), "numpy dtype 'V8'"),
     (history_buffer_method_swap, 'statistics methods may only be its own'),
     (WritesMarkerViaTofile, r"getattr.*'tofile'.*not allowed")],
    ids=[
        'ndarray-call', 'object-field-dtype', 'object-array', 'structured', 'history-buffer',
        'getattr-tofile'
    ])
def test_allow_list_builds_nothing_from_raw_bytes(payload, match, tmp_path, untrusted):
    """No numpy.ndarray(...) call, no object or structured dtype, no foreign HistoryBuffer
    statistics methods, no getattr beyond them: refused with the reason."""
    from mmengine.logging import HistoryBuffer

    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = evil_checkpoint(tmp_path, payload)
    with pytest.raises(UnsafeCheckpointError, match=match):
        _load(evil)
    assert not osp.exists(marker)
    assert HistoryBuffer._statistics_methods.get('mean', HistoryBuffer.mean) is HistoryBuffer.mean


def test_numpy_and_history_buffer_round_trip_exactly(tmp_path, untrusted):
    """What mmengine checkpoints hold loads as the real objects, values and dtypes exact."""
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('ckpt-round-trip')
    for v in (0.5, 1.5, 4.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 3)
    arrays = {
        'f8': np.linspace(0, 1, 7),
        'f2': np.arange(4, dtype=np.float16),
        'big-endian': np.arange(6, dtype='>i4').reshape(2, 3),
        'fortran': np.asfortranarray(np.arange(6.).reshape(2, 3)),
        'bool': np.array([True, False]),
        'complex': np.array([1 + 2j], dtype=np.complex64),
        'empty': np.zeros((0, 3), dtype=np.uint8),
        '0-d': np.array(2.5),
    }
    scalars = [np.float32(2.0), np.int64(-3), np.bool_(True), np.float64(np.inf)]
    path = str(tmp_path / 'mm.pth')
    torch.save(
        {
            'meta': {
                'arrays': arrays,
                'scalars': scalars,
                'dtype': np.dtype('>f4')
            },
            'message_hub': hub.state_dict(),
            'state_dict': OrderedDict(w=torch.ones(2))
        }, path)
    out = _load(path)
    for key, ref in arrays.items():
        got = out['meta']['arrays'][key]
        assert type(got) is np.ndarray and got.dtype == ref.dtype and got.flags.writeable, key
        np.testing.assert_array_equal(got, ref)
    assert out['meta']['arrays']['fortran'].flags.f_contiguous
    for got, ref in zip(out['meta']['scalars'], scalars):
        assert type(got) is type(ref) and got == ref
    assert out['meta']['dtype'] == np.dtype('>f4')
    buf = out['message_hub']['log_scalars']['train/loss']
    assert type(buf) is HistoryBuffer and buf.mean() == 2.0 and buf.current() == 4.0
    assert out['message_hub']['runtime_info']['iter'] == 3
    assert out['state_dict']['w'].tolist() == [1.0, 1.0]


def test_torch_load_keeps_its_own_default_and_every_scheme_is_covered(tmp_path, untrusted):
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmseg_spixreg.utils import load_from_local_safe
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'meta': {'arr': np.zeros(3)}, 'state_dict': {}}, path)
    before = set(map(str, torch.serialization.get_safe_globals()))
    assert _load(path)['meta']['arr'].shape == (3, )
    assert set(map(str, torch.serialization.get_safe_globals())) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch's own default outside the checkpoint loaders
    assert CheckpointLoader._get_checkpoint_loader('/some/local.pth') is load_from_local_safe
    assert all(
        getattr(loader, '_mmseg_spixreg_safe', False)
        for loader in CheckpointLoader._schemes.values())


def test_local_payload_runs_only_with_the_opt_in(tmp_path, untrusted):
    from mmseg_spixreg.utils import UnsafeCheckpointError
    evil, marker = evil_checkpoint(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=f'{TRUST}=1'):
        _load(evil)
    assert not osp.exists(marker)
    untrusted.setenv(TRUST, '1')
    _load(evil)
    assert osp.exists(marker)


def test_unreadable_checkpoint_files_are_named(tmp_path, untrusted):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    text = tmp_path / 'text.pth'
    text.write_text('hello, not a checkpoint\n')
    fifo = str(tmp_path / 'fifo.pth')
    os.mkfifo(fifo)
    truncated = str(tmp_path / 'truncated.pth')
    torch.save({'w': torch.zeros(1000)}, truncated)
    with open(truncated, 'r+b') as f:
        f.truncate(os.path.getsize(truncated) // 2)
    cases = [(str(empty), 'is empty'), (str(text), 'is not a PyTorch checkpoint'),
             (fifo, 'is not a regular file'), (str(tmp_path), 'is not a regular file'),
             (truncated, 'cannot be read')]
    for path, match in cases:
        with pytest.raises(ValueError, match=match) as err:
            _load(path)
        assert path in str(err.value)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load(str(tmp_path / 'missing.pth'))


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


def test_atomic_write_bytes_replaces_whole_file(tmp_path):
    from mmseg_spixreg.utils import atomic_write_bytes
    path = str(tmp_path / 'last_checkpoint')
    atomic_write_bytes('a' * 1000, path)
    atomic_write_bytes(b'new', path)
    with open(path, 'rb') as f:
        assert f.read() == b'new'
    assert os.listdir(tmp_path) == ['last_checkpoint']  # no temporary file left


def test_atomic_write_bytes_failure_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A failed write (here: disk full at fsync) raises, keeps the old file and removes its
    temporary file; the directory is fsynced after the rename."""
    import errno

    from mmseg_spixreg.utils import atomic_write_bytes
    path = str(tmp_path / 'ckpt.pth')
    atomic_write_bytes(b'old', path)
    real_fsync, real_replace, events = os.fsync, os.replace, []

    def full_disk(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full_disk)
    with pytest.raises(OSError, match='No space left'):
        atomic_write_bytes(b'new' * 1000, path)
    assert os.listdir(tmp_path) == ['ckpt.pth']
    with open(path, 'rb') as f:
        assert f.read() == b'old'

    def fsync(fd):
        events.append('fsync-dir' if osp.isdir(os.readlink(f'/proc/self/fd/{fd}')) else 'fsync')
        real_fsync(fd)

    def replace(src, dst):
        events.append('replace')
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    atomic_write_bytes(b'new', path)
    assert events == ['fsync', 'replace', 'fsync-dir']


def test_atomic_write_bytes_concurrent_writers_do_not_interleave(tmp_path):
    """Two writers to one path use their own temporary files: the result is one whole write."""
    from mmseg_spixreg.utils import atomic_write_bytes
    path = str(tmp_path / 'last_checkpoint')
    payloads = [bytes([65 + i]) * 200000 for i in range(4)]
    threads = [
        threading.Thread(target=lambda p=p: [atomic_write_bytes(p, path) for _ in range(5)])
        for p in payloads
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(path, 'rb') as f:
        assert f.read() in payloads
    assert os.listdir(tmp_path) == ['last_checkpoint']
