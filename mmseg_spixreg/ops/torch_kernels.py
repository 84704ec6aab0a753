# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The torch kernel set: every superpixel op written once, in plain tensor ops.

Implements the contractions of :mod:`.layout` (``upsample``, ``downsample``,
``correlation``) plus ``weighted_mean``, ``seed_mass``, ``channel_dot``,
``seed_softmax`` and ``hard_superpixels`` on tensors in the compute dtype,
with nothing but slices, padding, reshapes, element-wise ops, reductions,
``argmax`` and ``gather``. That makes this set at once

* the reference (any device; ``backend='torch'``, and ``'auto'`` unless the
  Triton kernels are enabled for CUDA tensors:
  :func:`.backends.auto_uses_triton`);
* the path an exporter traces (``torch.export`` / ``torch.onnx.export``:
  standard ONNX operators, symbolic even grid sizes): the public ops of
  :mod:`.superpixel` call these functions directly while a model is exported
  or compiled, and through the autograd functions of :mod:`.functions`
  (hand-written, deterministic backward: no scatter, no atomics) otherwise.

The formulation: the coarse map is zero-padded by one cell, so the seed
``(dy, dx)`` of every fine pixel is one slice of it (``seed_j(y, x) =
(y // 2 + dy, x // 2 + dx)``), and the four fine pixels of a coarse cell share
their seeds, so fine maps are handled as ``(B, C, H/2, 2, W/2, 2)`` views that
broadcast against the coarse slices. Out-of-map seeds read the zero padding
(zero features); contributions to them are dropped.
"""
import contextlib
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .layout import SEED_OFFSETS

#: Inputs of at most this many elements run single-threaded on CPU (:func:`scope`).
SINGLE_THREAD_NUMEL = 1 << 20


@contextlib.contextmanager
def scope(device: torch.device, numel: int = 0):
    """Context of one autograd ``forward``/``backward`` of the ops.

    On CPU, inputs of at most :data:`SINGLE_THREAD_NUMEL` elements (``numel``: the largest)
    run single-threaded: each op is then too short to gain from intra-op threads, and the
    thread barrier at its end stalls for a whole scheduler time slice whenever other
    processes compete for the cores. The thread setting is restored on exit.
    """
    threads = torch.get_num_threads()
    if device.type != 'cpu' or threads == 1 or numel > SINGLE_THREAD_NUMEL:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _seeds(coarse: Tensor) -> Iterator[Tensor]:
    """The 9 seed maps of a coarse grid at fine-column resolution, in the channel order of an
    assignment.

    Args:
        coarse (Tensor): (B, C, h, w).

    Yields:
        Tensor: for j = 0..8 (``(dy, dx) = SEED_OFFSETS[j]``) a (B, C, h, 1, 2w) view whose
        element ``(r, x)`` holds ``coarse[:, :, r + dy, x // 2 + dx]`` (0 outside the map):
        the seed ``j`` of fine pixels ``(2r, x)`` and ``(2r + 1, x)``, ready to broadcast
        against a fine map viewed as (B, C', h, 2, 2w) (:func:`_rows`). Every inner loop then
        runs over a contiguous row.
    """
    b, c, h, w = coarse.shape
    padded = F.pad(coarse, (1, 1, 1, 1))
    wide = padded[..., None].expand(b, c, h + 2, w + 2, 2).reshape(b, c, h + 2, 2 * w + 4)
    for dy, dx in SEED_OFFSETS:
        yield wide[:, :, 1 + dy:1 + dy + h, None, 2 + 2 * dx:2 + 2 * dx + 2 * w]


def _rows(fine: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, 2, W): the two fine rows of each coarse row."""
    b, c, height, width = fine.shape
    return fine.reshape(b, c, height // 2, 2, width)


def _pixels(rows: Tensor) -> Tensor:
    """Inverse of :func:`_rows`: (B, C, h, 2, W) -> (B, C, 2h, W)."""
    b, c, h, _, width = rows.shape
    return rows.reshape(b, c, 2 * h, width)


def _gather_seeds(contributions: Iterable[Tensor]) -> Tensor:
    """``out[:, :, s] = sum_j contributions[j][:, :, s - (dy_j, dx_j)]``: what the pixels of
    every cell give to each of their 9 seeds, collected on the seed grid (the adjoint of
    :func:`_seeds`).

    Args:
        contributions (Iterable[Tensor]): 9 (B, C, h, 2w) maps at fine-column resolution, in
            seed order; map ``j`` holds what the pixels of column ``x`` of every coarse row
            give to their seed ``j``.

    Returns:
        Tensor: (B, C, h, w); contributions to out-of-map seeds are dropped.
    """
    padded = None
    for (dy, dx), part in zip(SEED_OFFSETS, contributions):
        b, c, h, width = part.shape
        if padded is None:
            padded = part.new_zeros(b, c, h + 2, width + 4)
        padded[:, :, 1 + dy:1 + dy + h, 2 + 2 * dx:2 + 2 * dx + width] += part
    b, c, h2, width4 = padded.shape
    pairs = padded[:, :, 1:h2 - 1, 2:width4 - 2]
    return pairs.reshape(b, c, h2 - 2, (width4 - 4) // 2, 2).sum(-1)


def valid_seeds(coarse: Tensor) -> Tensor:
    """Which seeds of each fine pixel lie inside the coarse map (as
    :func:`.layout.valid_seed_mask`, from the shape of ``coarse`` only, so it stays
    symbolic under an exporter).

    Args:
        coarse (Tensor): (B, C, h, w) coarse map (only its shape, dtype and device are used).

    Returns:
        Tensor: bool (1, 9, 2h, 2w).
    """
    ones = torch.ones_like(coarse[:1, :1])
    seeds = [seed.expand(-1, -1, -1, 2, -1) for seed in _seeds(ones)]
    return _pixels(torch.cat(seeds, dim=1)) > 0


def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """fine[y, x] = sum_j assign[j, y, x] * coarse[seed_j(y, x)] (eq. 2).

    Args:
        coarse (Tensor): (B, C, h, w).
        assign (Tensor): (B, 9, 2h, 2w).
        out (Tensor, optional): contiguous (B, C, 2h, 2w) tensor to write the result to (must
            not overlap the inputs).

    Returns:
        Tensor: (B, C, 2h, 2w).
    """
    weights = _rows(assign)
    fine = None
    for j, seed in enumerate(_seeds(coarse)):
        if fine is None:
            fine = weights[:, :1] * seed if out is None else \
                torch.mul(weights[:, :1], seed, out=_rows(out))
        else:
            fine.addcmul_(weights[:, j:j + 1], seed)
    return _pixels(fine)


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """coarse[s] = sum over (y, x, j) with seed_j(y, x) = s of A[j,y,x] f[y,x].

    The adjoint of :func:`upsample` in its first argument.

    Args:
        fine (Tensor): (B, C, H, W).
        assign (Tensor): (B, 9, H, W).
        out (Tensor, optional): (B, C, H/2, W/2) tensor to write the result to.

    Returns:
        Tensor: (B, C, H/2, W/2). Contributions to out-of-map seeds are dropped.
    """
    rows, weights = _rows(fine), _rows(assign)
    result = _gather_seeds(
        torch.addcmul(rows[:, :, :, 0] * weights[:, j:j + 1, :, 0], rows[:, :, :,
                                                                         1], weights[:, j:j + 1, :,
                                                                                     1])
        for j in range(9))
    return result if out is None else out.copy_(result)


def correlation(fine: Tensor,
                coarse: Tensor,
                bias: Optional[Tensor] = None,
                accumulate: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j(y, x)]> - bias[seed_j].

    The derivative of :func:`upsample` w.r.t. the assignment.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        bias (Tensor, optional): (B, 1, H/2, W/2), subtracted per seed.
        accumulate (Tensor, optional): (B, 9, H, W) tensor to add the result to in place (and
            return) instead of a new tensor.

    Returns:
        Tensor: (B, 9, H, W); exactly 0 for out-of-map seeds.
    """
    rows = _rows(fine)
    dots = [(rows * seed).sum(1, keepdim=True) for seed in _seeds(coarse)]
    if bias is not None:
        dots = [dot - seed for dot, seed in zip(dots, _seeds(bias))]
    out = _pixels(torch.cat(dots, dim=1))
    return out if accumulate is None else accumulate.add_(out)


def seed_mass(assign: Tensor) -> Tensor:
    """Total assignment weight of every seed, sum A[j, y, x] over its pixels.

    Args:
        assign (Tensor): (B, 9, H, W).

    Returns:
        Tensor: (B, 1, H/2, W/2).
    """
    row_mass = _rows(assign).sum(3)  # (B, 9, h, W): both fine rows of each coarse row
    return _gather_seeds(row_mass[:, j:j + 1] for j in range(9))


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors, as (B, 1, h, w)."""
    return (a * b).sum(1, keepdim=True)


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """Assignment-weighted mean of every seed and its normaliser.

    Args:
        fine (Tensor): (B, C, H, W).
        assign (Tensor): (B, 9, H, W).
        eps (float): Added to the seed mass.

    Returns:
        tuple: ``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))``.
    """
    denom = seed_mass(assign) + eps
    return downsample(fine, assign) / denom, denom


def seed_softmax(fine: Tensor, coarse: Tensor, tau: float) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        tau (float): Temperature.

    Returns:
        Tensor: (B, 9, H, W), exactly 0 on out-of-map seeds.
    """
    logits = correlation(fine, coarse) / tau
    return torch.softmax(logits.masked_fill(~valid_seeds(coarse), float('-inf')), dim=1)


def _seed_coordinates(j: Tensor, ys: Tensor, xs: Tensor) -> Tuple[Tensor, Tensor]:
    """:func:`.layout.seed_coordinates` for int64 tensors (all values >= 0)."""
    return torch.div(ys, 2, rounding_mode='floor') + torch.div(j, 3, rounding_mode='floor') - 1, \
        torch.div(xs, 2, rounding_mode='floor') + torch.remainder(j, 3) - 1


def hard_superpixels(assignments: Sequence[Tensor],
                     size: Optional[Sequence[int]] = None,
                     crop: Optional[Sequence[int]] = None) -> Tensor:
    """Hard superpixels: each level's argmax in-map seed followed down the hierarchy.

    Args:
        assignments (Sequence[Tensor]): finest first, e.g. [A4 (B, 9, H, W), A8 (B, 9, H/2,
            W/2)].
        size (Sequence[int], optional): (H', W') the (cropped) ids are nearest-resized to.
        crop (Sequence[int], optional): (h, w): keep the top-left h x w fine pixels.

    Returns:
        Tensor: int64 (B, H, W) (or (B, H', W')): per pixel the flat index ``sy * w_L + sx``
        of its seed on the coarsest grid ``(h_L, w_L) = (H / 2**L, W / 2**L)``.
    """
    best: List[Tensor] = []
    for assign in assignments:
        h, w = assign.shape[-2] // 2, assign.shape[-1] // 2
        valid = valid_seeds(assign[:, :1, :h, :w])
        best.append(assign.masked_fill(~valid, float('-inf')).argmax(dim=1))  # (B, H_l, W_l)
    first = best[0]
    ys = torch.ones_like(first).cumsum(dim=1) - 1  # row index of every finest pixel
    xs = torch.ones_like(first).cumsum(dim=2) - 1
    ys, xs = _seed_coordinates(first, ys, xs)
    for level in best[1:]:
        batch, width = level.shape[0], level.shape[-1]
        j = level.reshape(batch, -1).gather(1, (ys * width + xs).reshape(batch, -1))
        ys, xs = _seed_coordinates(j.reshape(ys.shape), ys, xs)
    ids = ys * (assignments[-1].shape[-1] // 2) + xs
    if crop is not None:
        ids = ids[:, :crop[0], :crop[1]]
    if size is not None:
        ids = _nearest_resize(ids, size)
    return ids


def _nearest_resize(ids: Tensor, size: Sequence[int]) -> Tensor:
    """``F.interpolate(ids, size, mode='nearest')`` of a (B, h, w) integer map, as a gather at
    the source index PyTorch's float32 kernel (and the Triton kernel) computes,
    ``min(floor(i * float32(h / H)), h - 1)``: exact for any id (ONNX Resize has no integer
    or float64 version)."""
    rows = _nearest_index(size[0], ids.shape[1], ids.device)
    cols = _nearest_index(size[1], ids.shape[2], ids.device)
    return ids.index_select(1, rows).index_select(2, cols)


def _nearest_index(out_size, in_size, device: torch.device) -> Tensor:
    scale = torch.full((), in_size, dtype=torch.float32, device=device) / out_size
    index = torch.floor(torch.arange(out_size, device=device).float() * scale).long()
    return index.clamp(max=in_size - 1)
