"""Checkpoint loading for torch >= 2.6 with mmengine 0.10.7.

torch 2.6 changed ``torch.load``'s default to ``weights_only=True``. mmengine 0.10.7 calls
``torch.load(filename, map_location=...)`` for local files, and its own checkpoints carry
``meta`` / ``message_hub`` entries (numpy arrays and scalars, ``HistoryBuffer``, ``ConfigDict``,
...) that the weights-only unpickler rejects, so ``--resume`` and ``load_from`` fail with an
``UnpicklingError``.

The fix is narrow: only mmengine's loader for local paths (``CheckpointLoader`` scheme ``''``) is
re-registered, and it passes ``weights_only=False`` explicitly. ``torch.load`` itself, and
every other caller of it, keeps torch's secure default. As before torch 2.6, loading a
checkpoint executes its pickle: only load checkpoints you trust.
"""
import inspect
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_TORCH_LOAD_HAS_WEIGHTS_ONLY = 'weights_only' in inspect.signature(torch.load).parameters


def load_from_local_trusted(filename, map_location=None):
    """Load a local checkpoint written by mmengine (full pickle, not weights-only).

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (str | torch.device | callable, optional): As for :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _TORCH_LOAD_HAS_WEIGHTS_ONLY:
        return torch.load(filename, map_location=map_location, weights_only=False)
    return torch.load(filename, map_location=map_location)


def register_trusted_local_checkpoint_loader():
    """Make mmengine load local checkpoints with ``weights_only=False``.

    Idempotent. Called when :mod:`mmseg_spixreg` is imported.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_trusted, force=True)
