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
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch

from tests.utils import (DEMO_CFG, REPO_ROOT, ArrayInSet, HugeArrayShape, NdarrayFromBytes,
                         NewobjDtype, ObjectFieldDtype, ShadowedMethods, StatisticsHolder,
                         WritesMarkerViaTofile, config_text_payload, doubled_last, evil_checkpoint,
                         history_buffer_method_swap, impostor_doubled_last)

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


@pytest.mark.parametrize('via', ['build', 'rebuild_from_type'])
@pytest.mark.parametrize('where', ['message_hub', 'top-level'])
def test_inferencer_shadowed_get_does_not_reach_the_stored_config(where, via, tmp_path, untrusted):
    """Attack: the mapping mmengine reads the config text from is an OrderedDict whose ``get``
    is ``builtins.set`` (torch's unpickler sets the attribute), so a loader that looks for the
    text with ``.get`` misses it while mmengine's ``[]`` finds it. Refused: the attribute is
    not data; with the opt-in the payload runs."""
    from mmseg.apis import MMSegInferencer

    from mmseg_spixreg.utils import UnsafeCheckpointError
    marker = str(tmp_path / 'pwned.txt')
    weights = OrderedDict(w=torch.zeros(1))
    if where == 'message_hub':
        runtime = {'runtime_info': {'cfg': config_text_payload(marker)}}
        ckpt = {
            'state_dict': weights,
            'meta': {},
            'message_hub': ShadowedMethods(OrderedDict, runtime, 'get', via)
        }
    else:
        items = {'state_dict': weights, 'meta': {'cfg': config_text_payload(marker)}}
        ckpt = ShadowedMethods(OrderedDict, items, 'get', via)
    path = str(tmp_path / 'shadowed.pth')
    torch.save(ckpt, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        MMSegInferencer(model=None, weights=path, device='cpu')
    assert f'refused to load checkpoint {path}' in str(err.value)
    assert "collections.OrderedDict carrying instance attributes 'get'" in str(err.value)
    assert not osp.exists(marker)
    untrusted.setenv(TRUST, '1')
    with pytest.raises(Exception):  # (the payload's model is not buildable)
        MMSegInferencer(model=None, weights=path, device='cpu')
    assert osp.exists(marker)


@pytest.mark.parametrize('kind', [OrderedDict, Counter], ids=['OrderedDict', 'Counter'])
def test_containers_are_rebuilt_without_their_attributes(kind, tmp_path, untrusted):
    """Every loaded container is a new builtin: a Counter / OrderedDict carrying an attribute
    is refused wherever it sits; one without is a plain dict (an OrderedDict only with torch's
    ``_metadata``, itself rebuilt)."""
    from mmseg_spixreg.utils import UnsafeCheckpointError
    path = str(tmp_path / 'c.pth')
    torch.save({'meta': {'deep': [(ShadowedMethods(kind, {'a': 1}, 'items'), )]}}, path)
    with pytest.raises(UnsafeCheckpointError, match="carrying instance attributes 'items'"):
        _load(path)
    plain = kind(a=1)
    state = torch.nn.Linear(2, 1).state_dict()
    torch.save({'meta': {'c': plain, 'shared': [plain, plain]}, 'state_dict': state}, path)
    out = _load(path)
    assert type(out) is dict and type(out['meta']['c']) is dict and out['meta']['c'] == {'a': 1}
    assert out['meta']['shared'][0] is out['meta']['shared'][1]  # shared stays shared
    assert type(out['state_dict']) is OrderedDict
    assert out['state_dict']._metadata == state._metadata
    assert set(vars(out['state_dict'])) == {'_metadata'}


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


@pytest.mark.parametrize(
    'payload,match', [(HugeArrayShape, r'shape \(1180591620717411303424,\) is larger'),
                      (ArrayInSet, 'set holds an unhashable ndarray'),
                      (lambda marker: ShadowedMethods(set, {}, 'x'), 'AttributeError'),
                      (lambda marker: torch.nn.Parameter(torch.ones(1)), None)],
    ids=['shape-2**70', 'array-in-set', 'set-with-attribute', 'parameter'])
def test_content_errors_are_refusals_naming_the_file(payload, match, tmp_path, untrusted):
    """What the file's content makes the unpickler or a stand-in raise (an overflow, an
    unhashable member, an attribute on a set) is an UnsafeCheckpointError naming the file and
    the reason, never a raw OverflowError / TypeError / AttributeError."""
    from mmseg_spixreg.utils import UnsafeCheckpointError
    path, marker = evil_checkpoint(tmp_path, payload)
    if match is None:  # the control: the same layout with plain data loads
        assert torch.equal(_load(path)['meta']['payload'], torch.ones(1))
        return
    with pytest.raises(UnsafeCheckpointError, match=match) as err:
        _load(path)
    assert f'refused to load checkpoint {path}' in str(err.value)


def test_newobj_of_a_stand_in_is_the_same_validated_object(tmp_path, untrusted):
    """Pickle's NEWOBJ (``cls.__new__(cls, *args)``) on the numpy.dtype stand-in gives the same
    validated dtype a call does (it was an AttributeError)."""
    path, _ = evil_checkpoint(tmp_path, NewobjDtype)
    assert _load(path)['meta']['payload'] == np.dtype('f4')


def test_symlink_loop_is_named(tmp_path, untrusted):
    a, b = str(tmp_path / 'a.pth'), str(tmp_path / 'b.pth')
    os.symlink(a, b)
    os.symlink(b, a)
    with pytest.raises(ValueError, match='is a symbolic link loop') as err:
        _load(a)
    assert a in str(err.value)


def test_stored_gpu_ids_are_a_bounded_literal(tmp_path, untrusted):
    """``gpu_ids = range(1000000)`` (24 characters) is not expanded into a list mmengine would
    compile: more than MAX_GPU_IDS ids (or ids outside [0, 2**31)) are dropped."""
    from mmseg_spixreg.utils.stored_config import MAX_GPU_IDS
    path = str(tmp_path / 'c.pth')
    for config, kept in [('gpu_ids = range(1000000)', False), ('gpu_ids = range(10**18)', False),
                         (f'gpu_ids = list(range({MAX_GPU_IDS}))', False),
                         (f'gpu_ids = range({MAX_GPU_IDS})', True),
                         (f'gpu_ids = {[0] * (MAX_GPU_IDS + 1)}', False),
                         ('gpu_ids = [2**40]', False), ('gpu_ids = [-1]', False)]:
        torch.save({'meta': {'config': config}}, path)
        text = _load(path)['meta'].get('config')
        assert (text is not None) == kept, config
        if kept:
            assert text == f'gpu_ids = {list(range(MAX_GPU_IDS))!r}\n'


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


def _legitimate(kind):
    """(what torch.save writes, what loading it must give) for each kind of legitimate
    checkpoint content."""
    torch.manual_seed(0)
    if kind == 'torchvision':
        import torchvision
        sd = torchvision.models.resnet18(weights=None).state_dict()
        return sd, sd
    if kind == 'mmcv-1.x-meta':
        meta = dict(
            mmcv_version='1.7.1',
            CLASSES=('sky', 'road'),
            PALETTE=[[0, 0, 0], [1, 2, 3]],
            epoch=3,
            iter=300,
            time='Mon Jan  1 00:00:00 2024',
            env_info='sys.platform: '
            'linux',
            config="gpu_ids = range(0, 2)\nmodel = dict(type='X')\n")
        ckpt = dict(
            meta=meta,
            state_dict=OrderedDict(w=torch.ones(2)),
            optimizer=torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1).state_dict())
        expected = dict(ckpt, meta=dict(meta, config='gpu_ids = [0, 1]\n'))
        return ckpt, expected
    if kind == 'numpy-palette':
        ckpt = dict(
            meta=dict(
                dataset_meta=dict(
                    classes=('a', 'b'),
                    palette=np.array([[128, 64, 128], [0, 0, 0]], dtype=np.uint8),
                    label_map={np.int64(3): 1})))
        return ckpt, ckpt
    if kind == 'parameters':
        ckpt = dict(
            p=torch.nn.Parameter(torch.randn(3)),
            frozen=torch.nn.Parameter(torch.randn(2), requires_grad=False))
        return ckpt, ckpt
    if kind == 'sizes':
        ckpt = dict(
            shape=torch.Size([2, 3]),
            dtype=torch.bfloat16,
            device=torch.device('cpu'),
            nested=(torch.Size([]), {1, 2}, b'raw', bytearray(b'xy'), 1 + 2j, None))
        return ckpt, ckpt
    if kind == 'bf16':
        ckpt = dict(w=torch.randn(4, 4).to(torch.bfloat16), h=torch.randn(3).half())
        return ckpt, ckpt
    if kind == 'strided-views':
        base = torch.arange(24.).reshape(4, 6)
        ckpt = dict(base=base, col=base[:, 1], t=base.t(), step=base[::2, ::3])
        return ckpt, ckpt
    raise KeyError(kind)


def _assert_same(got, ref, where='checkpoint'):
    if isinstance(ref, torch.Tensor):
        assert type(got) is type(ref) and got.dtype == ref.dtype, where
        assert got.stride() == ref.stride() and got.requires_grad == ref.requires_grad, where
        assert torch.equal(got, ref), where
    elif isinstance(ref, np.ndarray):
        assert type(got) is np.ndarray and got.dtype == ref.dtype, where
        np.testing.assert_array_equal(got, ref)
    elif isinstance(ref, dict):
        assert isinstance(got, dict) and list(got) == list(ref), where
        for key in ref:
            _assert_same(got[key], ref[key], f'{where}[{key!r}]')
    elif isinstance(ref, (list, tuple)):
        assert type(got) is type(ref) and len(got) == len(ref), where
        for i, (g, r) in enumerate(zip(got, ref)):
            _assert_same(g, r, f'{where}[{i}]')
    else:
        assert type(got) is type(ref) and got == ref, where


@pytest.mark.parametrize('kind', [
    'torchvision', 'mmcv-1.x-meta', 'numpy-palette', 'parameters', 'sizes', 'bf16', 'strided-views'
])
def test_legitimate_checkpoints_load_unchanged(kind, tmp_path, untrusted):
    """Each kind of content legitimate checkpoints hold loads with its values, types, dtypes,
    strides and requires_grad (mmcv-1.x meta: its stored config becomes the gpu_ids line)."""
    ckpt, expected = _legitimate(kind)
    path = str(tmp_path / f'{kind}.pth')
    torch.save(ckpt, path)
    out = _load(path)
    _assert_same(out, expected)
    if kind == 'strided-views':  # views still share their storage
        assert out['col'].untyped_storage().data_ptr() == out['base'].untyped_storage().data_ptr()
    if kind == 'torchvision':
        assert out._metadata == ckpt._metadata


@pytest.fixture
def register_statistic():
    """HistoryBuffer.register_statistics for one test (the table is process-wide)."""
    from mmengine.logging import HistoryBuffer
    added = []

    def register(fn):
        HistoryBuffer.register_statistics(fn)
        added.append(fn.__name__)

    yield register
    for name in added:
        HistoryBuffer._statistics_methods.pop(name, None)


def test_statistics_registered_in_this_process_load(tmp_path, untrusted, register_statistic):
    """mmengine's public HistoryBuffer.register_statistics: a checkpoint written in a process
    that registered statistics (a function, a class's method) names them; they load, and the
    buffer uses this process's functions."""
    from mmengine.logging import HistoryBuffer, MessageHub
    register_statistic(doubled_last)
    register_statistic(StatisticsHolder.tripled_last)
    hub = MessageHub.get_instance('registered-statistics')
    hub.update_scalar('train/loss', 2.0)
    path = str(tmp_path / 'stats.pth')
    torch.save({'message_hub': hub.state_dict(), 'meta': {}}, path)
    buf = _load(path)['message_hub']['log_scalars']['train/loss']
    assert type(buf) is HistoryBuffer
    assert buf.statistics('doubled_last') == 4.0 and buf.statistics('tripled_last') == 6.0
    assert HistoryBuffer._statistics_methods['doubled_last'] is doubled_last


def test_statistics_the_process_did_not_register_are_refused(tmp_path, untrusted,
                                                             register_statistic):
    """The function a file names is never used: a statistic this process registered under the
    same name is another function (or none is registered) -> refused, naming the global."""
    from mmengine.logging import HistoryBuffer

    from mmseg_spixreg.utils import UnsafeCheckpointError
    register_statistic(doubled_last)
    path = str(tmp_path / 'stats.pth')
    torch.save({'buf': HistoryBuffer([1.0], [1])}, path)
    HistoryBuffer._statistics_methods.pop('doubled_last')
    with pytest.raises(UnsafeCheckpointError, match='offending global.*tests.utils.doubled_last'):
        _load(path)
    register_statistic(impostor_doubled_last)  # registered as 'doubled_last' too
    with pytest.raises(UnsafeCheckpointError, match='offending global.*tests.utils.doubled_last'):
        _load(path)


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
