# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Traceable formulations of the superpixel ops, used only to export a model (ONNX).

:mod:`mmseg_spixreg.ops` evaluates the superpixel ops with blocked kernels inside autograd
functions (torch kernels on CPU, Triton on GPU): fast, but no exporter can trace them. The
functions here compute the same quantities from plain tensor ops that map onto standard ONNX
operators (Pad, Slice, Mul, ReduceSum, Softmax, ArgMax, GatherElements, Reshape), for any
(symbolic) even grid size: the coarse map is zero-padded by one cell, the seed ``(dy, dx)`` of
every fine pixel is then one slice of it (layout contract in :mod:`mmseg_spixreg.ops.layout`:
``seed_j(y, x) = (y // 2 + dy, x // 2 + dx)``), and the four fine pixels of a coarse cell share
their seeds, so fine maps are handled as ``(B, C, H/2, 2, W/2, 2)`` views that broadcast against
the coarse slices. Out-of-map seeds read the zero padding, as the kernels treat them (zero
features). ``tests/test_deployment/test_superpixel_export.py`` checks every function against its
kernel counterpart.
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.layout import SEED_OFFSETS


def _seed_slices(coarse: Tensor) -> Iterator[Tensor]:
    """The 9 seed maps of a coarse grid, in the channel order of an assignment.

    Args:
        coarse (Tensor): (B, C, h, w).

    Yields:
        Tensor: for j = 0..8 (``(dy, dx) = SEED_OFFSETS[j]``) a (B, C, h, 1, w, 1) view whose
        cell ``(r, c)`` holds ``coarse[:, :, r + dy, c + dx]`` (0 outside the map), ready to
        broadcast against a fine map viewed as (B, C', h, 2, w, 2).
    """
    h, w = coarse.shape[-2:]
    padded = F.pad(coarse, (1, 1, 1, 1))
    for dy, dx in SEED_OFFSETS:
        seed = padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        yield seed[:, :, :, None, :, None]


def _cells(fine: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, 2, W/2, 2): the 2x2 fine pixels of each coarse cell."""
    b, c, h2, w2 = fine.shape
    return fine.reshape(b, c, h2 // 2, 2, w2 // 2, 2)


def _pixels(cells: Tensor) -> Tensor:
    """Inverse of :func:`_cells`: (B, C, h, 2, w, 2) -> (B, C, 2h, 2w)."""
    b, c, h, _, w, _ = cells.shape
    return cells.reshape(b, c, 2 * h, 2 * w)


def valid_seeds_traceable(coarse: Tensor) -> Tensor:
    """Which seeds of each fine pixel lie inside the coarse map (:func:`valid_seed_mask`).

    Args:
        coarse (Tensor): (B, C, h, w) coarse map (only its shape is used).

    Returns:
        Tensor: bool (1, 9, 2h, 2w).
    """
    ones = torch.ones_like(coarse[:1, :1])
    seeds = [seed.expand(-1, -1, -1, 2, -1, 2) for seed in _seed_slices(ones)]
    return _pixels(torch.cat(seeds, dim=1)) > 0


def superpixel_upsample_traceable(coarse: Tensor, assign: Tensor) -> Tensor:
    """Superpixel upsampling, eq. 2 of Suzuki (2021), as
    :func:`mmseg_spixreg.ops.superpixel_upsample`.

    ``fine[:, y, x] = sum_j assign[j, y, x] * coarse[:, seed_j(y, x)]``.

    Args:
        coarse (Tensor): (B, C, H/2, W/2) coarse features (logits).
        assign (Tensor): (B, 9, H, W) assignment (layout of :mod:`mmseg_spixreg.ops.layout`).

    Returns:
        Tensor: (B, C, H, W) in the dtype of ``coarse``.
    """
    weights = _cells(assign.to(coarse.dtype))
    fine = None
    for j, seed in enumerate(_seed_slices(coarse)):
        term = weights[:, j:j + 1] * seed
        fine = term if fine is None else fine + term
    return _pixels(fine)


def superpixel_upsample_hierarchy_traceable(coarse: Tensor,
                                            assignments: Sequence[Tensor]) -> Tensor:
    """:func:`superpixel_upsample_traceable` through every level, coarsest first, as
    :func:`mmseg_spixreg.ops.superpixel_upsample_hierarchy`.

    Args:
        coarse (Tensor): (B, C, H / 2**L, W / 2**L).
        assignments (Sequence[Tensor]): finest first, e.g. [A4 (B, 9, H, W), A8 ...].

    Returns:
        Tensor: (B, C, H, W).
    """
    for assign in reversed(list(assignments)):
        coarse = superpixel_upsample_traceable(coarse, assign)
    return coarse


def neighbour_correlation_traceable(fine: Tensor, coarse: Tensor) -> Tensor:
    """Dot product of every fine pixel with each of its 9 seeds (0 for out-of-map seeds), as
    :func:`mmseg_spixreg.ops.neighbour_correlation`.

    Args:
        fine (Tensor): (B, K, H, W).
        coarse (Tensor): (B, K, H/2, W/2).

    Returns:
        Tensor: (B, 9, H, W).
    """
    cells = _cells(fine)
    dots = [(cells * seed).sum(dim=1, keepdim=True) for seed in _seed_slices(coarse)]
    return _pixels(torch.cat(dots, dim=1))


def seed_softmax_traceable(fine: Tensor,
                           coarse: Tensor,
                           tau: float,
                           *,
                           normalize_eps: Optional[float] = None) -> Tensor:
    """Softmax over the in-map seeds of ``neighbour_correlation / tau`` (the softmax of eq. 1),
    as :func:`mmseg_spixreg.ops.seed_softmax`; out-of-map seeds get exactly 0.

    Args:
        fine (Tensor): (B, K, H, W) projected fine features.
        coarse (Tensor): (B, K, H/2, W/2) projected coarse features.
        tau (float): temperature (> 0).
        normalize_eps (float, optional): if given, both are L2-normalised over K first
            (``F.normalize(., dim=1, eps=normalize_eps)``: cosine similarities).

    Returns:
        Tensor: (B, 9, H, W) assignment.
    """
    if normalize_eps is not None:
        fine = F.normalize(fine, dim=1, eps=normalize_eps)
        coarse = F.normalize(coarse, dim=1, eps=normalize_eps)
    logits = neighbour_correlation_traceable(fine, coarse) / tau
    logits = logits.masked_fill(~valid_seeds_traceable(coarse), float('-inf'))
    return torch.softmax(logits, dim=1)


def _seed_coordinates(j: Tensor, ys: Tensor, xs: Tensor) -> Tuple[Tensor, Tensor]:
    """:func:`mmseg_spixreg.ops.seed_coordinates` for int64 tensors (all values >= 0)."""
    return torch.div(ys, 2, rounding_mode='floor') + torch.div(j, 3, rounding_mode='floor') - 1, \
        torch.div(xs, 2, rounding_mode='floor') + torch.remainder(j, 3) - 1


def hard_superpixels_traceable(assignments: Sequence[Tensor]) -> Tensor:
    """Hard superpixels (each level's argmax seed followed down the hierarchy), as
    :func:`mmseg_spixreg.ops.hard_superpixels`.

    Args:
        assignments (Sequence[Tensor]): finest first, e.g. [A4 (B, 9, H, W), A8 (B, 9, H/2,
            W/2)].

    Returns:
        Tensor: int64 (B, H, W): per pixel the flat index ``sy * w_L + sx`` of its seed on the
        coarsest grid ``(h_L, w_L) = (H / 2**L, W / 2**L)``.
    """
    best: List[Tensor] = []
    for assign in assignments:
        h, w = assign.shape[-2] // 2, assign.shape[-1] // 2
        valid = valid_seeds_traceable(assign[:, :1, :h, :w])
        best.append(assign.masked_fill(~valid, float('-inf')).argmax(dim=1))  # (B, H_l, W_l)
    first = best[0]
    ys = torch.ones_like(first).cumsum(dim=1) - 1  # row index of every finest pixel
    xs = torch.ones_like(first).cumsum(dim=2) - 1
    ys, xs = _seed_coordinates(first, ys, xs)
    for level in best[1:]:
        batch, width = level.shape[0], level.shape[-1]
        j = level.reshape(batch, -1).gather(1, (ys * width + xs).reshape(batch, -1))
        ys, xs = _seed_coordinates(j.reshape(ys.shape), ys, xs)
    coarse_w = assignments[-1].shape[-1] // 2
    return ys * coarse_w + xs
