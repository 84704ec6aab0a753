# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Layout contract of the superpixel ops and the input checks of the API.

Layout contract (stated here only; every file of this package follows it)
-------------------------------------------------------------------------
An assignment ``A`` of one hierarchy level is a tensor of shape
``(B, 9, H, W)`` on the *fine* grid (``H`` and ``W`` even). It relates every
fine pixel ``(y, x)`` to the 3x3 window of *seeds* (cells of the coarse
``(H/2, W/2)`` grid) around the coarse cell that contains the pixel::

    channel j = 3 * (dy + 1) + (dx + 1),   dy, dx in {-1, 0, 1}
    seed_j(y, x) = (y // 2 + dy, x // 2 + dx)

Seeds outside the coarse map carry weight 0 and each pixel's 9 weights sum to
1 (``SuperpixelAssignment`` produces exactly that). The operators treat
out-of-map seeds as zero features, so stray weight on them contributes nothing
and receives zero gradient.

All operators are partial contractions of the same trilinear form
``T(f, A, c) = sum_{y,x,j} A[j,y,x] <f[:,y,x], c[:,seed_j(y,x)]>``:

* upsample(c, A)     = dT/df (eq. 2, a gather of the 9 seeds of each pixel),
* downsample(f, A)   = dT/dc (weighted-mean numerator; as a gather: seed ``s``
  collects the 2x2 pixels of each of the 9 cells ``s - (dy, dx)``),
* correlation(f, c)  = dT/dA (pixel-to-seed dot products),

so the backward pass of each operator is built from the other two. Both kernel
sets (:mod:`.torch_kernels`, :mod:`.triton_kernels`) implement these three.
"""
import contextlib
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

NUM_SEEDS = 9
# (dy, dx) of channel j, j = 3 * (dy + 1) + (dx + 1).
SEED_OFFSETS: Tuple[Tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


# ---------------------------------------------------------------------------
# Layout helpers (public)
# ---------------------------------------------------------------------------
def seed_coordinates(j: Union[int, Tensor], y: Union[int, Tensor], x: Union[int, Tensor]) -> Tuple:
    """Coarse-grid coordinates of seed ``j`` of fine pixel ``(y, x)``.

    Args:
        j (int | Tensor): Channel index in ``[0, 9)`` of the assignment.
        y (int | Tensor): Fine-grid row(s).
        x (int | Tensor): Fine-grid column(s).

    Returns:
        tuple: ``(y // 2 + dy, x // 2 + dx)`` with ``dy = j // 3 - 1`` and
        ``dx = j % 3 - 1``. The coordinates may lie outside the coarse map
        (such seeds have weight 0). Works element-wise on integer tensors.
    """
    return y // 2 + j // 3 - 1, x // 2 + j % 3 - 1


def valid_seed_mask(height: int, width: int, device: Optional[torch.device] = None) -> Tensor:
    """Which of the 9 seeds of every fine pixel lie inside the coarse map.

    Args:
        height (int): Fine-grid height ``H`` (even).
        width (int): Fine-grid width ``W`` (even).
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: Bool tensor of shape (1, 9, H, W), True where
        ``seed_j(y, x)`` is inside the ``(H/2, W/2)`` coarse map.
    """
    _check_even(height, width, 'valid_seed_mask')
    h, w = height // 2, width // 2
    ys = torch.arange(height, device=device) // 2
    xs = torch.arange(width, device=device) // 2
    rows = [(ys + dy >= 0) & (ys + dy < h) for dy in (-1, 0, 1)]
    cols = [(xs + dx >= 0) & (xs + dx < w) for dx in (-1, 0, 1)]
    mask = torch.stack([rows[dy + 1][:, None] & cols[dx + 1][None, :] for dy, dx in SEED_OFFSETS])
    return mask.unsqueeze(0)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def _check_even(height: int, width: int, where: str) -> None:
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise ValueError(f'{where}: the fine grid must have even height and '
                         f'width (>= 2), got {height}x{width}')


def _check_tensor(t, name: str, where: str) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f'{where}: `{name}` must be a torch.Tensor, got '
                         f'{type(t).__name__}')
    if t.dim() != 4:
        raise ValueError(f'{where}: `{name}` must be 4-D (B, C, H, W), got '
                         f'shape {tuple(t.shape)}')
    if not t.is_floating_point():
        raise ValueError(f'{where}: `{name}` must have a floating point '
                         f'dtype, got {t.dtype}')


def _check_assignment(assign, name: str, where: str) -> None:
    _check_tensor(assign, name, where)
    if assign.shape[1] != NUM_SEEDS:
        raise ValueError(f'{where}: `{name}` must have {NUM_SEEDS} channels '
                         f'(3x3 seeds), got shape {tuple(assign.shape)}')
    _check_even(assign.shape[2], assign.shape[3], f'{where} (`{name}`)')


def _check_same_batch_device(a: Tensor, b: Tensor, names: str, where: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'{where}: batch sizes of {names} differ: '
                         f'{a.shape[0]} vs {b.shape[0]}')
    if a.device != b.device:
        raise ValueError(f'{where}: {names} are on different devices: '
                         f'{a.device} vs {b.device}')


def _check_fine_pair(fine: Tensor, assign: Tensor, fname: str, aname: str, where: str) -> None:
    _check_same_batch_device(fine, assign, f'`{fname}` and `{aname}`', where)
    if fine.shape[-2:] != assign.shape[-2:]:
        raise ValueError(f'{where}: `{fname}` spatial size {tuple(fine.shape[-2:])} must '
                         f'equal the fine grid of `{aname}` {tuple(assign.shape[-2:])}')


def _check_coarse_pair(coarse: Tensor, assign: Tensor, cname: str, aname: str, where: str) -> None:
    _check_same_batch_device(coarse, assign, f'`{cname}` and `{aname}`', where)
    expected = (assign.shape[2] // 2, assign.shape[3] // 2)
    if tuple(coarse.shape[-2:]) != expected:
        raise ValueError(f'{where}: `{cname}` spatial size {tuple(coarse.shape[-2:])} does '
                         f'not pair with the fine grid {tuple(assign.shape[-2:])} of '
                         f'`{aname}` (expected {expected})')


def _check_hierarchy(assignments, where: str) -> List[Tensor]:
    if isinstance(assignments, Tensor) or not isinstance(assignments, (list, tuple)):
        raise ValueError(f'{where}: `assignments` must be a list of (B, 9, '
                         f'H, W) tensors ordered finest to coarsest, got '
                         f'{type(assignments).__name__}')
    if len(assignments) == 0:
        raise ValueError(f'{where}: `assignments` is empty; give at least '
                         f'one level')
    assignments = list(assignments)
    for lvl, assign in enumerate(assignments):
        _check_assignment(assign, f'assignments[{lvl}]', where)
        if lvl == 0:
            continue
        prev = assignments[lvl - 1]
        _check_same_batch_device(prev, assign, f'`assignments[{lvl - 1}]` '
                                 f'and `assignments[{lvl}]`', where)
        expected = (prev.shape[2] // 2, prev.shape[3] // 2)
        if tuple(assign.shape[-2:]) != expected:
            raise ValueError(f'{where}: `assignments[{lvl}]` has grid '
                             f'{tuple(assign.shape[-2:])} but must live on the coarse grid '
                             f'{expected} of `assignments[{lvl - 1}]` (levels are ordered '
                             f'finest to coarsest, each half the size of the previous)')
    return assignments


def _dtypes(*tensors: Tensor) -> Tuple[torch.dtype, torch.dtype]:
    """(result dtype, compute dtype): torch promotion, computed in >= fp32."""
    out_dtype = tensors[0].dtype
    for t in tensors[1:]:
        out_dtype = torch.promote_types(out_dtype, t.dtype)
    return out_dtype, torch.promote_types(out_dtype, torch.float32)


def _autocast_off(device: torch.device):
    """Context that disables autocast on ``device`` (no-op if unsupported)."""
    try:
        if torch.is_autocast_enabled(device.type):
            return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, TypeError, ValueError):
        pass
    return contextlib.nullcontext()


def _check_eps(eps, where: str) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) \
            or not eps > 0:
        raise ValueError(f'{where}: `eps` must be a positive number (it keeps '
                         f'empty superpixels at 0 instead of 0/0), got '
                         f'{eps!r}')
