# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Safe checkpoint loading (one weights-only policy for every route) and atomic writes.

**Loading.** Importing :mod:`mmseg_spixreg` replaces every scheme of mmengine's
``CheckpointLoader`` (:func:`register_safe_checkpoint_loaders`), the one path behind
``load_from``, ``--resume``, ``tools/test.py CKPT``, ``init_cfg=dict(type='Pretrained')``,
``init_model`` and ``MMSegInferencer(weights=...)``:

* a local file is read with ``torch.load(..., weights_only=True)`` inside
  ``torch.serialization.safe_globals(checkpoint_safe_globals())``;
* a URL (``http(s)://``, and ``torchvision://``, ``modelzoo://``, ``open-mmlab://``,
  ``mmcls://`` resolved to theirs through mmengine's model lists) is downloaded into torch.hub's
  cache (``<TORCH_HOME>/hub/checkpoints/<file name>``, the file ``torch.hub`` would use; a file
  already there is not downloaded again) and that file is read the same way (mmengine's loaders
  call ``torch.hub.load_state_dict_from_url``, whose default is a full unpickle);
* ``s3://`` / ``petrel://`` bytes are read the same way; other schemes run inside the same
  ``safe_globals``.

The allow-list builds nothing from raw bytes except through validating stand-ins: numpy arrays,
scalars and dtypes (bool / integer / float / complex only: no object or structured dtypes;
``numpy.ndarray`` and ``numpy.dtype`` cannot be called) and mmengine's ``HistoryBuffer`` (only
its own statistics methods), turned into the real objects after unpickling. A checkpoint that
needs anything else is refused with :class:`UnsafeCheckpointError`, naming the file, the offending
global(s) and the opt-in.

**Stored config text is never executed.** mmengine executes the Python config text stored in a
checkpoint (``Config.fromstring``: ``Runner.resume`` reads ``meta['config']``, the inferencer
without a config ``message_hub['runtime_info']['cfg']`` / ``meta['cfg']``). The loaders hand
those keys over replaced (:func:`neutralise_stored_configs`): the GPU ids that resume checks are
read with :mod:`ast` (no execution) and written back as a ``gpu_ids = [...]`` line of integers;
the inferencer's config text becomes a line that raises a ``ValueError`` asking for the config
file.

**Opt-in.** ``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1`` loads *local* files with ``weights_only=False``
and leaves their stored config texts as they are: mmengine's behaviour, for files you trust.
``torch.load`` itself keeps torch's defaults everywhere; the allow-list is in force only while a
checkpoint loader runs.

**Writing.** :func:`atomic_write_bytes` writes to a unique temporary file in the target's
directory, fsyncs it, renames it into place (``os.replace``) and fsyncs the directory, so a
process killed at any moment leaves either the old or the new file, never a truncated one; a
failed write removes its temporary file (used by ``AtomicCheckpointHook``).
"""
import ast
import io
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import LocalBackend, get_file_backend, register_backend
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

#: Environment variable that opts in to full (unsafe) unpickling of local checkpoints.
TRUST_ENV_VAR = 'MMSEG_SPIXREG_TRUST_CHECKPOINTS'
#: Name of :class:`AtomicLocalBackend` in mmengine's file-backend registry.
ATOMIC_BACKEND = 'atomic_local'

# HistoryBuffer's own statistics methods: the only functions a checkpoint may name
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
# numpy dtype codes a checkpoint may contain: bool, signed / unsigned int, float, complex
_NUMPY_DTYPE_CODE = re.compile(r'[biufc][0-9]{1,2}')
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def _refuse(message):
    raise pickle.UnpicklingError(message)


# ----------------------------------------------------------------------------------------------
# stand-ins for the globals a checkpoint may name (validated, turned into the real objects by
# _materialise after unpickling)


class PickledDtype:
    """What a pickled ``numpy.dtype`` is while a checkpoint is unpickled.

    Only plain bool / integer / float / complex dtypes (codes like ``'f4'``, ``'i8'``, ``'b1'``)
    are accepted, with a byte order and nothing else: no object dtype, no structured (fields)
    or sub-array dtype, no flags (numpy would take them from the pickle as they are).

    Args:
        code (str): The dtype code numpy pickles (``'f8'``, ...).
    """

    def __init__(self, code):
        if not isinstance(code, str) or not _NUMPY_DTYPE_CODE.fullmatch(code):
            _refuse(f'numpy dtype {code!r} is not allowed in a checkpoint (only bool, integer, '
                    'float and complex dtypes are)')
        try:
            self.dtype = np.dtype(code)
        except TypeError as err:
            _refuse(f'numpy dtype {code!r}: {err}')

    def __setstate__(self, state):
        # numpy's state: (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            _refuse(f'numpy dtype state {state!r} is not allowed in a checkpoint')
        order, subarray, names, fields = state[1:5]
        if order not in ('<', '>', '|', '=') or (subarray, names, fields) != (None, None, None):
            _refuse(f'numpy dtype state {state!r} is not allowed in a checkpoint (only plain '
                    'numeric dtypes with a byte order are)')
        if order in '<>':
            self.dtype = self.dtype.newbyteorder(order)


def numpy_dtype(code, align=False, copy=False):
    """Stand-in for ``numpy.dtype`` (the call a pickled dtype starts with).

    Args:
        code (str): Dtype code, e.g. ``'f8'``.
        align (bool): Ignored (numpy's argument).
        copy (bool): Ignored (numpy's argument).

    Returns:
        PickledDtype: Validated; the real dtype after unpickling.
    """
    return PickledDtype(code)


class NumpyNdarrayName:
    """Stand-in for the global ``numpy.ndarray``: a pickled array names it as the type to
    reconstruct; calling or instantiating it (``ndarray(shape, dtype, buffer, offset,
    strides)`` reads memory outside the buffer) is refused."""

    def __new__(cls, *args, **kwargs):
        _refuse('numpy.ndarray(...) cannot be called in a checkpoint (it can read memory '
                'outside its buffer); arrays are rebuilt from their pickled state only')


class PickledArray:
    """What a pickled numpy array is while a checkpoint is unpickled: its state is checked
    (numeric dtype, C or Fortran order, exactly ``prod(shape) * itemsize`` bytes) and copied
    into a new array."""

    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            _refuse('numpy array state is not a 4- or 5-tuple')
        shape, dtype, fortran, data = state[-4:]
        if (not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape)):
            _refuse(f'numpy array shape {shape!r} is not a tuple of non-negative ints')
        if not isinstance(dtype, PickledDtype):
            _refuse(f'numpy array dtype {dtype!r} is not a pickled numeric dtype')
        if not isinstance(data, bytes) or fortran not in (True, False, 0, 1):
            _refuse('numpy array data must be bytes (an object array is not allowed)')
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.dtype.itemsize
        if len(data) != nbytes:
            _refuse(f'numpy array of shape {shape} and dtype {dtype.dtype} needs {nbytes} bytes, '
                    f'the checkpoint has {len(data)}')
        flat = np.frombuffer(data, dtype=dtype.dtype)
        self.array = flat.reshape(shape, order='F' if fortran else 'C').copy(order='K')


def numpy_reconstruct(subtype, shape, typecode):
    """Stand-in for ``numpy.core.multiarray._reconstruct`` (how a pickled array starts).

    Args:
        subtype (type): Must be the ``numpy.ndarray`` stand-in (no subclasses).
        shape (tuple): numpy pickles ``(0,)``.
        typecode (bytes): numpy pickles ``b'b'``.

    Returns:
        PickledArray: Filled by its state; the real array after unpickling.
    """
    if subtype is not NumpyNdarrayName:
        _refuse(f'numpy _reconstruct of {subtype!r} is not allowed (only numpy.ndarray)')
    return PickledArray()


def numpy_scalar(dtype, data):
    """Stand-in for ``numpy.core.multiarray.scalar`` (a pickled numpy scalar).

    Args:
        dtype (PickledDtype): Its numeric dtype.
        data (bytes): Exactly ``itemsize`` bytes.

    Returns:
        numpy.generic: The scalar.
    """
    if not isinstance(dtype, PickledDtype) or not isinstance(data, bytes):
        _refuse('numpy scalar needs a numeric dtype and bytes')
    if len(data) != dtype.dtype.itemsize:
        _refuse(f'numpy scalar of dtype {dtype.dtype} needs {dtype.dtype.itemsize} bytes, '
                f'the checkpoint has {len(data)}')
    return np.frombuffer(data, dtype=dtype.dtype)[0].copy()


class PickledHistoryBuffer:
    """What mmengine's ``HistoryBuffer`` (message hub logs) is while a checkpoint is unpickled.

    Its state may hold ``max_length``, the log and count arrays and HistoryBuffer's own
    statistics methods (``min``, ``max``, ``current``, ``mean``), nothing else:
    ``HistoryBuffer.__setstate__`` would add any function of the pickle to the statistics
    methods of *every* buffer in the process. After unpickling it becomes
    ``HistoryBuffer(log_history, count_history, max_length)``.
    """

    buffer = None

    def __setstate__(self, state):
        if not isinstance(state, dict):
            _refuse('HistoryBuffer state must be a dict')
        unknown = set(state) - {
            'max_length', '_log_history', '_count_history', 'statistics_methods',
            '_statistics_methods'
        }
        if unknown:
            _refuse(f'HistoryBuffer state has unknown keys {sorted(map(str, unknown))}')
        for key in ('statistics_methods', '_statistics_methods'):
            methods = state.get(key, {})
            if not isinstance(methods, dict) or any(
                    name not in _HISTORY_BUFFER_STATISTICS
                    or fn is not getattr(HistoryBuffer, name) for name, fn in methods.items()):
                _refuse('HistoryBuffer statistics methods may only be its own '
                        f'{list(_HISTORY_BUFFER_STATISTICS)}')
        max_length = state.get('max_length', 1000000)
        logs, counts = state.get('_log_history'), state.get('_count_history')
        if not isinstance(max_length, int) or max_length <= 0:
            _refuse(f'HistoryBuffer max_length must be a positive int, got {max_length!r}')
        if not (isinstance(logs, PickledArray) and isinstance(counts, PickledArray) and
                logs.array.ndim == counts.array.ndim == 1 and len(logs.array) == len(counts.array)):
            _refuse('HistoryBuffer logs and counts must be 1-D numeric arrays of equal length')
        self.buffer = HistoryBuffer(logs.array, counts.array, max_length)


def pickled_bytes(*args):
    """Stand-in for ``builtins.bytes``: pickle protocol 2 writes ``b''`` as ``bytes()`` (the
    data of an empty numpy array); any argument (``bytes(10**12)`` allocates) is refused."""
    if args:
        _refuse('builtins.bytes(...) with arguments is not allowed in a checkpoint')
    return b''


def history_buffer_statistic(owner, name):
    """Stand-in for ``builtins.getattr`` while a checkpoint is unpickled.

    ``HistoryBuffer.__getstate__`` stores its statistics methods, which pickle writes as
    ``builtins.getattr(HistoryBuffer, 'min')``. A real ``getattr`` on an allowed class reaches
    e.g. ``ndarray.tofile`` (a file write).

    Args:
        owner (type): Must be (the stand-in of) mmengine's ``HistoryBuffer``.
        name (str): One of ``min``, ``max``, ``current``, ``mean``.

    Returns:
        callable: ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if owner not in (PickledHistoryBuffer, HistoryBuffer) or name not in _HISTORY_BUFFER_STATISTICS:
        _refuse(f'builtins.getattr({owner!r}, {name!r}) is not allowed in a checkpoint (only '
                f'HistoryBuffer statistics methods {list(_HISTORY_BUFFER_STATISTICS)} are)')
    return getattr(HistoryBuffer, name)


def checkpoint_safe_globals():
    """The allow-list of a checkpoint load: ``(stand-in, 'module.name')`` pairs.

    What mmengine 0.10.7 / mmseg_spixreg checkpoints contain besides tensors and containers
    (found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints written
    by ``tools/train.py``): numpy arrays, scalars and dtypes under numpy 1.x and 2.x names,
    mmengine's ``HistoryBuffer`` and ``builtins.getattr`` (for its statistics methods). Each
    name maps to a validating stand-in, never to the real callable.

    Returns:
        list[tuple]: Entries for ``torch.serialization.safe_globals``.
    """
    found = [(numpy_dtype, 'numpy.dtype'), (NumpyNdarrayName, 'numpy.ndarray'),
             (PickledHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
             (history_buffer_statistic, 'builtins.getattr'), (pickled_bytes, 'builtins.bytes')]
    for module in _NUMPY_MODULES:
        found += [(numpy_reconstruct, f'{module}._reconstruct'), (numpy_scalar, f'{module}.scalar')]
    # BUILD (setting an object's state) is allowed on instances of these classes only
    return found + [(PickledDtype, f'{__name__}.PickledDtype'),
                    (PickledArray, f'{__name__}.PickledArray')]


def _materialise(obj, memo=None):
    """Replace the stand-ins in an unpickled checkpoint by the real objects (in place for
    dicts and lists, so OrderedDict state dicts keep their ``_metadata``)."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, PickledArray):
        if obj.array is None:
            _refuse('numpy array without its state')
        out = obj.array
    elif isinstance(obj, PickledDtype):
        out = obj.dtype
    elif isinstance(obj, PickledHistoryBuffer):
        if obj.buffer is None:
            _refuse('HistoryBuffer without its state')
        out = obj.buffer
    elif isinstance(obj, dict):
        memo[id(obj)] = out = obj
        for key in list(obj):
            obj[key] = _materialise(obj[key], memo)
    elif isinstance(obj, list):
        memo[id(obj)] = out = obj
        obj[:] = [_materialise(v, memo) for v in obj]
    elif type(obj) in (tuple, set, frozenset):
        out = type(obj)(_materialise(v, memo) for v in obj)
    else:
        out = obj
    memo[id(obj)] = out
    return out


# ----------------------------------------------------------------------------------------------
# stored config text (Python code) is never executed


def _gpu_ids_in(text):
    """``gpu_ids`` of a stored config text, read with :mod:`ast` (nothing executed): a
    top-level ``gpu_ids = [0, 1]`` / ``(0, 1)`` / ``range(0, 2)`` of ints, else None."""
    try:
        tree = ast.parse(text)
    except Exception:  # SyntaxError, RecursionError, MemoryError, ...: nothing to read
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == 'gpu_ids'):
            value = node.value
            try:
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                        and value.func.id == 'range' and not value.keywords
                        and len(value.args) <= 3):
                    ids = list(range(*[ast.literal_eval(a) for a in value.args]))
                else:
                    ids = ast.literal_eval(value)
            except Exception:
                return None
            if isinstance(ids, (list, tuple)) and all(type(i) is int for i in ids):
                return [int(i) for i in ids]
            return None
    return None


def _refusing_config_text(source):
    """A config text whose only statement raises a ValueError asking for the config file."""
    message = (f'{source}: the config text stored in this checkpoint is not executed (a config '
               'is Python code: a checkpoint could run anything through it). Pass the config '
               f"file with the weights: MMSegInferencer(model='CONFIG.py', weights={source!r}) "
               f"or init_model('CONFIG.py', {source!r}); only for a file you trust, set "
               f'{TRUST_ENV_VAR}=1 to let mmengine execute its stored config')
    return f'raise ValueError({message!r})\n'


def neutralise_stored_configs(checkpoint, source):
    """Replace the config texts mmengine would execute (``Config.fromstring``) in place.

    * ``meta['config']`` (read by ``Runner.resume`` for its GPU-count check): replaced by
      ``gpu_ids = [...]`` with the ids :mod:`ast` reads from the text (removed if none).
    * ``meta['cfg']`` and ``message_hub['runtime_info']['cfg']`` (read by mmengine's
      inferencer when it is given no config): replaced by a line that raises a ``ValueError``
      asking for the config file.

    Args:
        checkpoint (dict): A loaded checkpoint (anything else is left alone).
        source (str): The checkpoint's path or URL (for the message).

    Returns:
        The checkpoint.
    """
    if not isinstance(checkpoint, dict):
        return checkpoint
    meta = checkpoint.get('meta')
    if isinstance(meta, dict):
        if 'config' in meta:
            ids = _gpu_ids_in(meta.pop('config'))
            if ids is not None:
                meta['config'] = f'gpu_ids = {ids!r}\n'
        if 'cfg' in meta:
            meta['cfg'] = _refusing_config_text(source)
    hub = checkpoint.get('message_hub')
    info = hub.get('runtime_info') if isinstance(hub, dict) else None
    if isinstance(info, dict) and 'cfg' in info:
        info['cfg'] = _refusing_config_text(source)
    return checkpoint


# ----------------------------------------------------------------------------------------------
# loading


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside :func:`checkpoint_safe_globals` to be unpickled."""


def checkpoints_trusted():
    """Whether the user opted in to full unpickling (``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1``)."""
    return os.environ.get(TRUST_ENV_VAR, '0').strip().lower() in ('1', 'true', 'yes', 'on')


def _offending_globals(path):
    """The globals in a local checkpoint file that the allow-list lacks ([] if unknown)."""
    if not isinstance(path, str) or not osp.isfile(path):
        return []
    allowed = {name for _, name in checkpoint_safe_globals()}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint (legacy format): torch's message must do
        return []
    return sorted(set(found) - allowed)


def _refusal(source, path, err):
    offending = _offending_globals(path)
    if offending:
        what = f'offending global(s): {", ".join(offending)}'
    else:  # the reason, the line after torch's 'WeightsUnpickler error:' preamble
        lines = [ln.strip() for ln in str(err).split('WeightsUnpickler error:')[-1].splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith('Weights only load failed')]
        what = 'the weights-only unpickler says: ' + (lines[0] if lines else str(err))
    if source == path:
        how = (f'If you trust this file, set the environment variable {TRUST_ENV_VAR}=1 to load '
               'it with full unpickling (weights_only=False).')
    elif path is None:
        how = (f'If you trust it, copy it to a local file and load that with {TRUST_ENV_VAR}=1 '
               '(full unpickling, weights_only=False).')
    else:
        how = (f'It was downloaded to {path}; if you trust it, load that local file with '
               f'{TRUST_ENV_VAR}=1 (full unpickling, weights_only=False).')
    return UnsafeCheckpointError(
        f'refused to load checkpoint {source}: it needs objects outside the weights-only '
        f'allow-list ({what}). Unpickling it could run arbitrary code. {how}')


def _check_checkpoint_file(path, source):
    """Clear errors for what is not a checkpoint file: missing, not a regular file (a FIFO
    would block the reader), empty, or neither torch.save format (zip / legacy pickle)."""
    if not osp.exists(path):
        raise FileNotFoundError(f'{path} can not be found.')
    if not osp.isfile(path):
        raise ValueError(f'checkpoint {source}: {path} is not a regular file (a directory, FIFO '
                         'or device); a checkpoint is a file written by torch.save')
    if osp.getsize(path) == 0:
        raise ValueError(f'checkpoint {source}: {path} is empty (0 bytes); it was not written '
                         'completely, or is not a checkpoint')
    with open(path, 'rb') as f:
        head = f.read(2)
    if head == b'PK' and not zipfile.is_zipfile(path):
        raise ValueError(f'checkpoint {source}: {path} cannot be read: a zip archive without '
                         'its end (truncated, e.g. an interrupted copy or download)')
    if not zipfile.is_zipfile(path) and head[:1] != b'\x80':
        raise ValueError(f'checkpoint {source}: {path} is not a PyTorch checkpoint (neither '
                         f"torch.save's zip format nor its legacy pickle; it starts with {head!r})")


def _weights_only_load(f, map_location, source, path):
    """``torch.load(f, weights_only=True)`` with the allow-list, stand-ins replaced, stored
    config texts neutralised; a refusal / unreadable file is a clear error naming ``source``."""
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            checkpoint = torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _refusal(source, path, err) from err
        except (EOFError, RuntimeError, KeyError, ValueError, TypeError) as err:
            if isinstance(err, RuntimeError) and 'PytorchStreamReader' not in str(err):
                raise  # e.g. map_location: torch's own message is the clear one
            raise ValueError(f'checkpoint {source}: cannot be read ({type(err).__name__}: '
                             f'{err}); it may be truncated or not written by torch.save') from err
        try:
            checkpoint = _materialise(checkpoint)
        except pickle.UnpicklingError as err:
            raise _refusal(source, path, err) from err
    return neutralise_stored_configs(checkpoint, source)


def load_from_local_safe(filename, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and the checkpoint allow-list.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (str | torch.device | callable, optional): As for :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint (stored config texts neutralised).

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        ValueError: If it is not a regular file, empty, or not a torch.save file.
        UnsafeCheckpointError: If the file needs globals outside the allow-list (and
            ``MMSEG_SPIXREG_TRUST_CHECKPOINTS`` is not set).
    """
    filename = osp.expanduser(filename)
    _check_checkpoint_file(filename, filename)
    if checkpoints_trusted():
        print_log(
            f'{TRUST_ENV_VAR} is set: loading {filename} with full unpickling '
            '(weights_only=False)',
            logger='current')
        return torch.load(filename, map_location=map_location, weights_only=False)
    return _weights_only_load(filename, map_location, filename, filename)


def hub_cache_path(url):
    """Where torch.hub keeps the download of ``url``:
    ``<torch.hub.get_dir()>/checkpoints/<file name of the URL path>`` (``$TORCH_HOME/hub/...``).
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'checkpoint URL {url} names no file')
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def load_from_url_safe(url, map_location=None, name=None):
    """Download ``url`` into torch.hub's cache (unless it is there) and load that file like a
    local one, without the opt-in (download it and load the local file to opt in).

    Args:
        url (str): ``http://`` or ``https://`` URL.
        map_location (str | torch.device | callable, optional): As for :func:`torch.load`.
        name (str, optional): What the user gave (``torchvision://resnet34``), for messages.

    Returns:
        dict: The loaded checkpoint.
    """
    path = hub_cache_path(url)
    source = url if name is None or name == url else f'{name} ({url})'

    def download():
        if not osp.isfile(path):
            os.makedirs(osp.dirname(path), exist_ok=True)
            print_log(f'Downloading {url} to {path}', logger='current')
            # torch.hub writes a temporary file and moves it into place
            torch.hub.download_url_to_file(url, path, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        download()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:  # other nodes have their own cache
            download()
    _check_checkpoint_file(path, source)
    return _weights_only_load(path, map_location, source, path)


def load_from_torchvision_safe(filename, map_location=None):
    """``torchvision://NAME`` / ``modelzoo://NAME``: mmengine's torchvision URL, then
    :func:`load_from_url_safe`."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return load_from_url_safe(get_torchvision_models()[name], map_location, filename)


def load_from_openmmlab_safe(filename, map_location=None):
    """``open-mmlab://NAME``: mmengine's URL (or file under MMENGINE_HOME), then the same
    load."""
    from mmengine.runner.checkpoint import (_get_mmengine_home, get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_url_safe(url, map_location, filename)
    return load_from_local_safe(osp.join(_get_mmengine_home(), url), map_location)


def load_from_mmcls_safe(filename, map_location=None):
    """``mmcls://NAME``: mmengine's URL, the same load, then mmengine's mmcls key
    processing."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint, get_mmcls_models
    url = get_mmcls_models()[filename[len('mmcls://'):]]
    return _process_mmcls_checkpoint(load_from_url_safe(url, map_location, filename))


def load_from_ceph_safe(filename, map_location=None, backend='petrel'):
    """``s3://`` / ``petrel://``: the bytes from mmengine's file backend, the same load."""
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    return _weights_only_load(io.BytesIO(data), map_location, filename, None)


def _weights_only_loader(loader):
    """Run another scheme's loader (which calls ``torch.load`` with torch's ``weights_only``
    default) with the allow-list; its result gets the same post-processing."""

    def load(filename, map_location=None):
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            try:
                checkpoint = _materialise(loader(filename, map_location))
            except pickle.UnpicklingError as err:
                raise _refusal(filename, None, err) from err
        return neutralise_stored_configs(checkpoint, filename)

    load.__name__ = f'safe_{getattr(loader, "__name__", "loader")}'
    return load


_SAFE_SCHEMES = OrderedDict([
    ('', load_from_local_safe),
    (('http://', 'https://'), load_from_url_safe),
    (('modelzoo://', 'torchvision://'), load_from_torchvision_safe),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab_safe),
    ('mmcls://', load_from_mmcls_safe),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph_safe),
])


def register_safe_checkpoint_loaders():
    """Give every scheme of mmengine's ``CheckpointLoader`` the weights-only policy.

    Local paths, URLs (hub cache) and ``s3://`` get this module's loaders; any other
    registered scheme (``pavi://``, a third party's) keeps its loader, run inside the allow-list.
    Every route goes through ``CheckpointLoader.load_checkpoint``: ``load_from``, ``--resume``,
    ``tools/test.py``, ``init_cfg=dict(type='Pretrained')``, ``init_model``, the inferencer,
    ``mmengine.runner.load_checkpoint``. Idempotent; called when :mod:`mmseg_spixreg` is
    imported.
    """
    ours = set(_SAFE_SCHEMES.values())
    for prefixes, loader in _SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if loader not in ours and not getattr(loader, '_mmseg_spixreg_safe', False):
            safe = _weights_only_loader(loader)
            safe._mmseg_spixreg_safe = True
            CheckpointLoader.register_scheme(prefixes=prefix, loader=safe, force=True)
    for loader in ours:
        loader._mmseg_spixreg_safe = True


# ----------------------------------------------------------------------------------------------
# writing


def _fsync_directory(directory):
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(data, path):
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written.

    The bytes go to a temporary file with a unique name (``tempfile.mkstemp``, same directory,
    so two writers never share it), are flushed and fsynced, and the file is renamed over
    ``path`` with :func:`os.replace` (atomic on POSIX); then the directory is fsynced so that the
    rename survives a crash. If anything fails (disk full, ...) the temporary file is removed and
    the error raised; ``path`` is left as it was. Only a process killed between ``mkstemp`` and
    the rename leaves a ``.<name>.*.tmp`` behind.

    Args:
        data (bytes | str): Content (str is UTF-8 encoded).
        path (str): Destination path.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory, name = osp.split(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` / ``put_text`` are atomic.

    mmengine's ``save_checkpoint`` writes through ``backend.put``; with this backend
    (``backend_args=dict(backend='atomic_local')``, what ``AtomicCheckpointHook`` uses) a
    checkpoint file is either absent, the previous one, or complete.
    """

    def put(self, obj, filepath):
        """Write bytes to ``filepath`` through :func:`atomic_write_bytes`.

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Destination (its directory is created if needed).
        """
        os.makedirs(osp.dirname(osp.abspath(str(filepath))), exist_ok=True)
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj, filepath, encoding='utf-8'):
        """Write text to ``filepath`` through :func:`atomic_write_bytes`.

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Destination.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        self.put(obj.encode(encoding), filepath)
