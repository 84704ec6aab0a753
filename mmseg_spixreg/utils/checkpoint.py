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

What the file holds becomes plain data before anything reads it
(:mod:`mmseg_spixreg.utils.checkpoint_data`): the allow-list builds nothing from raw bytes
except through validating stand-ins (numeric numpy arrays, scalars and dtypes; mmengine's
``HistoryBuffer`` with its own statistics and those registered in this process); every container
is then rebuilt as a new builtin carrying no attributes, so no method of an object the file built
is ever called; the config texts mmengine would execute are replaced by texts the plug-in writes
(``gpu_ids = [...]`` read with :mod:`ast`, at most 4096 ints; a line raising a ``ValueError``
that asks for the config file). Whatever is not plain data is refused with
:class:`UnsafeCheckpointError`, naming the file, the reason and the opt-in.

**Opt-in.** ``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1`` loads *local* files with ``weights_only=False``
and leaves their stored config texts as they are: mmengine's behaviour, for files you trust.
``torch.load`` itself keeps torch's defaults everywhere; the allow-list is in force only while a
checkpoint loader runs.

**Writing.** :func:`atomic_write_bytes` writes to a unique temporary file in the target's
directory, fsyncs it, renames it into place (``os.replace``) and fsyncs the directory, so a
process killed at any moment leaves either the old or the new file, never a truncated one; a
failed write removes its temporary file (used by ``AtomicCheckpointHook``).
"""
import errno
import io
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from collections import OrderedDict
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import LocalBackend, get_file_backend, register_backend
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_data import (TRUST_ENV_VAR, UnsafeCheckpointError, checkpoint_as_data,
                              checkpoint_safe_globals)
from .stored_config import neutralise_stored_configs

#: Name of :class:`AtomicLocalBackend` in mmengine's file-backend registry.
ATOMIC_BACKEND = 'atomic_local'

# ----------------------------------------------------------------------------------------------
# loading


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
        what = (f'it needs objects outside the weights-only allow-list (offending global(s): '
                f'{", ".join(offending)}); unpickling it could run arbitrary code')
    elif isinstance(err, pickle.UnpicklingError):
        # the reason, the line after torch's 'WeightsUnpickler error:' preamble
        lines = [ln.strip() for ln in str(err).split('WeightsUnpickler error:')[-1].splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith('Weights only load failed')]
        what = 'it is not plain data: ' + (lines[0] if lines else str(err))
    else:
        what = f'it is not plain data: unpickling it raised {type(err).__name__}'
        what += f': {err}' if str(err) else ''
    if source == path:
        how = (f'If you trust this file, set the environment variable {TRUST_ENV_VAR}=1 to load '
               'it with full unpickling (weights_only=False).')
    elif path is None:
        how = (f'If you trust it, copy it to a local file and load that with {TRUST_ENV_VAR}=1 '
               '(full unpickling, weights_only=False).')
    else:
        how = (f'It was downloaded to {path}; if you trust it, load that local file with '
               f'{TRUST_ENV_VAR}=1 (full unpickling, weights_only=False).')
    return UnsafeCheckpointError(f'refused to load checkpoint {source}: {what}. {how}')


def _check_checkpoint_file(path, source):
    """Clear errors for what is not a checkpoint file: missing, a symbolic link loop, not a
    regular file (a FIFO would block the reader), empty, or neither torch.save format (zip /
    legacy pickle)."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f'checkpoint {source}: {path} is a symbolic link loop (too many '
                             'levels of symbolic links); it names no file') from err
        if err.errno == errno.ENOENT:
            raise FileNotFoundError(f'{path} can not be found.') from err
        raise ValueError(f'checkpoint {source}: {path} cannot be read ({err})') from err
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


# what torch says when a storage cannot go where map_location (or the file) puts it
_LOCATION_ERRORS = ('deserialize object on', 'restore data location', 'map_location')


def _unreadable(source, err):
    return ValueError(f'checkpoint {source}: cannot be read ({type(err).__name__}: {err}); it '
                      'may be truncated or not written by torch.save')


def _weights_only_load(f, map_location, source, path):
    """``torch.load(f, weights_only=True)`` with the allow-list, then
    :func:`checkpoint_as_data` and :func:`neutralise_stored_configs`. A file that is not plain
    data is an :class:`UnsafeCheckpointError` naming ``source`` and the reason (whatever the
    unpickler or a stand-in raised); one that cannot be read is a ``ValueError``."""
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            checkpoint = torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _refusal(source, path, err) from err
        except (EOFError, KeyError, zipfile.BadZipFile) as err:
            raise _unreadable(source, err) from err
        except RuntimeError as err:
            if 'PytorchStreamReader' in str(err):
                raise _unreadable(source, err) from err
            if any(what in str(err) for what in _LOCATION_ERRORS):
                raise  # map_location: torch's own message is the clear one
            raise _refusal(source, path, err) from err
        except Exception as err:  # what the file's content made a global raise
            raise _refusal(source, path, err) from err
        try:
            checkpoint = checkpoint_as_data(checkpoint)
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
                checkpoint = checkpoint_as_data(loader(filename, map_location))
            except (pickle.UnpicklingError, TypeError, ValueError, AttributeError, OverflowError,
                    MemoryError) as err:
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
