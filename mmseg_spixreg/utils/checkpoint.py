# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Safe checkpoint loading (weights-only unpickling with an allow-list) and atomic writes.

**Loading.** torch >= 2.6 loads with ``weights_only=True``: the unpickler only builds tensors,
containers and primitive types, plus the globals put on its allow-list. mmengine 0.10.7's own
checkpoints also carry numpy arrays / scalars (``meta``, ``message_hub``) and mmengine's
``HistoryBuffer`` objects, which that unpickler rejects, so ``--resume`` failed. Instead of
turning safe loading off, :func:`register_safe_checkpoint_loaders` (called when
:mod:`mmseg_spixreg` is imported) makes every mmengine checkpoint loader (local paths,
``http(s)://``, ``torchvision://``, ``open-mmlab://``, ...) unpickle inside
``torch.serialization.safe_globals(checkpoint_safe_globals())``: exactly the globals found in
the checkpoints that ``tools/train.py`` writes (found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on real ones). A checkpoint that needs
anything else is refused with :class:`UnsafeCheckpointError`, naming the file, the offending
global(s) and the opt-in: setting the environment variable ``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1``
loads *local* checkpoints with ``weights_only=False`` (a full pickle: only for files you trust).
``torch.load`` itself keeps torch's default everywhere; the allow-list is in force only while a
checkpoint loader runs.

**Writing.** :func:`atomic_write_bytes` writes to a temporary file in the target's directory,
fsyncs it and renames it into place (``os.replace``), so a process killed at any moment leaves
either the old or the new file, never a truncated one (used by ``AtomicCheckpointHook``).
"""
import functools
import os
import os.path as osp
import pickle

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

#: Environment variable that opts in to full (unsafe) unpickling of local checkpoints.
TRUST_ENV_VAR = 'MMSEG_SPIXREG_TRUST_CHECKPOINTS'
#: Name of :class:`AtomicLocalBackend` in mmengine's file-backend registry.
ATOMIC_BACKEND = 'atomic_local'

# HistoryBuffer.__getstate__ stores its statistics methods (min/max/current/mean), which pickle
# writes as ``builtins.getattr(HistoryBuffer, 'min')``. getattr itself is never allowed (getattr on
# an allowed class reaches methods that write files, e.g. ``ndarray.tofile``); checkpoints get
# this stand-in, which only returns HistoryBuffer's own statistics methods.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner, name):
    """Stand-in for ``builtins.getattr`` while a checkpoint is unpickled.

    Args:
        owner (type): Must be :class:`mmengine.logging.HistoryBuffer`.
        name (str): One of HistoryBuffer's own statistics methods: ``min``, ``max``,
            ``current``, ``mean``.

    Returns:
        callable: ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if owner is not HistoryBuffer or name not in _HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'builtins.getattr({owner!r}, {name!r}) is not allowed in a checkpoint (only '
            f'HistoryBuffer statistics methods {list(_HISTORY_BUFFER_STATISTICS)} are)')
    return getattr(HistoryBuffer, name)


def _numpy_globals():
    """numpy's array / scalar / dtype reconstructors, under numpy 1.x and 2.x module names."""
    import numpy as np

    # the dtype classes (numpy.dtypes.Float64DType, ...) of bool and numeric dtypes: the pickle
    # builds dtypes through numpy.dtype and then sets their state (object dtype is left out)
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    found = [np.ndarray, np.dtype] + sorted({type(np.dtype(c)) for c in codes}, key=str)
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(module, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        # the full path makes checkpoints written with either numpy major version loadable
        found += [(mod._reconstruct, f'{module}._reconstruct'), (mod.scalar, f'{module}.scalar')]
    return found


def checkpoint_safe_globals():
    """The globals a weights-only load of an mmengine 0.10.7 / mmseg_spixreg checkpoint needs.

    Found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints written
    by ``tools/train.py`` (numpy arrays and scalars in ``meta`` / ``message_hub``, mmengine's
    ``HistoryBuffer``, and ``builtins.getattr`` restricted by :func:`history_buffer_statistic`).

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    return _numpy_globals() + [
        HistoryBuffer,
        (history_buffer_statistic, 'builtins.getattr'),
    ]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside :func:`checkpoint_safe_globals` to be unpickled."""


def checkpoints_trusted():
    """Whether the user opted in to full unpickling (``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1``)."""
    return os.environ.get(TRUST_ENV_VAR, '0').strip().lower() in ('1', 'true', 'yes', 'on')


def _offending_globals(source):
    """The globals in a local checkpoint file that the allow-list lacks ([] if unknown)."""
    if not isinstance(source, str) or not osp.isfile(source):
        return []
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in checkpoint_safe_globals()
    }
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(source)
    except Exception:  # not a zip checkpoint (legacy format): torch's message must do
        return []
    return sorted(set(found) - allowed)


def _refusal(source, err, local):
    offending = _offending_globals(source)
    if offending:
        what = f'offending global(s): {", ".join(offending)}'
    else:  # torch's own reason, the line after its 'WeightsUnpickler error:' preamble
        lines = [ln.strip() for ln in str(err).split('WeightsUnpickler error:')[-1].splitlines()]
        what = 'the weights-only unpickler says: ' + next((ln for ln in lines if ln), str(err))
    if local:
        how = (f'If you trust this file, set the environment variable {TRUST_ENV_VAR}=1 to load '
               'it with full unpickling (weights_only=False).')
    else:
        how = (f'If you trust it, download it and load the local file with {TRUST_ENV_VAR}=1 '
               '(full unpickling, weights_only=False).')
    return UnsafeCheckpointError(
        f'refused to load checkpoint {source}: it needs objects outside the weights-only '
        f'allow-list ({what}). Unpickling it could run arbitrary code. {how}')


def load_from_local_safe(filename, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and the checkpoint allow-list.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (str | torch.device | callable, optional): As for :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnsafeCheckpointError: If the file needs globals outside the allow-list (and
            ``MMSEG_SPIXREG_TRUST_CHECKPOINTS`` is not set).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if checkpoints_trusted():
        print_log(
            f'{TRUST_ENV_VAR} is set: loading {filename} with full unpickling '
            '(weights_only=False)',
            logger='current')
        return torch.load(filename, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _refusal(filename, err, local=True) from err


load_from_local_safe._mmseg_spixreg_safe = True


def _weights_only_loader(loader):
    """Run one of mmengine's remote loaders (which call ``torch.load`` with torch's
    ``weights_only=True`` default) with the checkpoint allow-list in force."""

    @functools.wraps(loader)
    def load(filename, map_location=None):
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            try:
                return loader(filename, map_location)
            except pickle.UnpicklingError as err:
                raise _refusal(filename, err, local=False) from err

    load._mmseg_spixreg_safe = True
    return load


def register_safe_checkpoint_loaders():
    """Make all of mmengine's checkpoint loaders unpickle with the checkpoint allow-list.

    The local-path scheme gets :func:`load_from_local_safe`; every other registered scheme
    (``http(s)://``, ``torchvision://``, ``open-mmlab://``, ``mmcls://``, ``s3://``, ...) keeps
    its loader, run inside ``safe_globals``. Every path into them is covered: ``load_from``,
    ``--resume``, ``tools/test.py``, ``init_cfg=dict(type='Pretrained')`` and
    ``mmengine.runner.load_checkpoint`` all go through ``CheckpointLoader.load_checkpoint``.
    Idempotent; called when :mod:`mmseg_spixreg` is imported.
    """
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if getattr(loader, '_mmseg_spixreg_safe', False):
            continue
        safe = load_from_local_safe if prefix == '' else _weights_only_loader(loader)
        CheckpointLoader.register_scheme(prefixes=prefix, loader=safe, force=True)


def atomic_write_bytes(data, path):
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written.

    The bytes go to ``<dir>/.<name>.tmp`` (same file system), are flushed and fsynced, and the
    file is renamed over ``path`` with :func:`os.replace` (atomic on POSIX); the directory is
    fsynced so that the rename survives a crash. A process killed before the rename leaves
    ``path`` as it was (plus the temporary file, which the next write replaces).

    Args:
        data (bytes | str): Content (str is UTF-8 encoded).
        path (str): Destination path.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory, name = osp.split(osp.abspath(path))
    tmp = osp.join(directory, f'.{name}.tmp')
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
