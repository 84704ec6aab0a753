# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Achievable segmentation accuracy (ASA): of a hard superpixel map, and eq. 8 of soft ones.

Hard superpixels (:func:`achievable_segmentation_accuracy`, reported as ``SpixASA``):
``ASA = sum_s max_c |s ∩ g_c| / |labelled pixels|``: the pixel accuracy of the best labelling
that assigns one class to each superpixel. Computed from the superpixel x class contingency table,
built with one ``np.bincount`` over combined ids (``superpixel * num_classes + class``) or, when
that table would be large and sparse, from ``np.unique`` over the same combined ids. Pixels whose
ground truth equals ``ignore_index`` are excluded from numerator and denominator.

Soft superpixels of a model (:func:`asa_from_assignments`, eq. 8 of the paper, reported as
``ASA``): ``ASA(A, y) = ACC(q(y, A), y)``, the accuracy of the labels reconstructed through the
model's assignments.
"""
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ...ops import superpixel_reconstruct

# Use a dense bincount table up to this many cells per labelled pixel (then switch to sparse).
_DENSE_CELLS_PER_PIXEL = 4


def _flatten_pair(superpixels: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    superpixels = np.asarray(superpixels)
    gt = np.asarray(gt)
    if superpixels.ndim == 3 and superpixels.shape[0] == 1:
        superpixels = superpixels[0]
    if gt.ndim == 3 and gt.shape[0] == 1:
        gt = gt[0]
    if superpixels.ndim != 2 or gt.ndim != 2:
        raise ValueError('superpixels and gt must be 2D maps (H, W) or (1, H, W), got '
                         f'{superpixels.shape} and {gt.shape}')
    if superpixels.shape != gt.shape:
        raise ValueError(f'superpixels and gt shapes differ: {superpixels.shape} vs {gt.shape}')
    if not (np.issubdtype(superpixels.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
        raise TypeError('superpixels and gt must be integer arrays, got '
                        f'{superpixels.dtype} and {gt.dtype}')
    return superpixels.reshape(-1), gt.reshape(-1)


def contingency_table(superpixels: np.ndarray, gt: np.ndarray, num_superpixels: int,
                      num_classes: int) -> np.ndarray:
    """Dense superpixel x class pixel-count table.

    Args:
        superpixels (np.ndarray): Superpixel ids in ``[0, num_superpixels)``, shape (N,).
        gt (np.ndarray): Class ids in ``[0, num_classes)``, shape (N,).
        num_superpixels (int): Number of rows S.
        num_classes (int): Number of columns C.

    Returns:
        np.ndarray: int64 table, shape (S, C); entry (s, c) counts pixels of s with class c.
    """
    combined = superpixels.astype(np.int64) * num_classes + gt.astype(np.int64)
    table = np.bincount(combined, minlength=num_superpixels * num_classes)
    return table.reshape(num_superpixels, num_classes)


def asa_counts(superpixels: np.ndarray, gt: np.ndarray, ignore_index: int = 255) -> Tuple[int, int]:
    """Numerator and denominator of ASA.

    Args:
        superpixels (np.ndarray): Integer superpixel id map, shape (H, W) or (1, H, W). Ids may
            be arbitrary non-negative integers (not necessarily contiguous).
        gt (np.ndarray): Integer ground-truth class map, same shape.
        ignore_index (int): Ground-truth label excluded from the evaluation. Defaults to 255.

    Returns:
        tuple[int, int]: ``(best, labelled)``: the sum over superpixels of their largest overlap
        with one class, and the number of labelled (non-ignored) pixels.
    """
    sp, g = _flatten_pair(superpixels, gt)
    if ignore_index is not None:
        keep = g != ignore_index
        sp, g = sp[keep], g[keep]
    n = g.size
    if n == 0:
        return 0, 0
    if sp.min() < 0 or g.min() < 0:
        raise ValueError('superpixel and class ids must be non-negative')
    num_classes = int(g.max()) + 1
    num_superpixels = int(sp.max()) + 1
    if num_superpixels * num_classes <= _DENSE_CELLS_PER_PIXEL * n + 1024:
        table = contingency_table(sp, g, num_superpixels, num_classes)
        best = int(table.max(axis=1).sum())
    else:
        # Sparse contingency table: counts of the occurring (superpixel, class) pairs, sorted by
        # combined id, i.e. grouped by superpixel; take each group's maximum.
        combined = sp.astype(np.int64) * num_classes + g.astype(np.int64)
        pairs, counts = np.unique(combined, return_counts=True)
        group_start = np.flatnonzero(np.r_[True, np.diff(pairs // num_classes) != 0])
        best = int(np.maximum.reduceat(counts, group_start).sum())
    return best, int(n)


# aligned by hand (yapf: disable): yapf 0.43 indents these parameters like the body (E125)
def achievable_segmentation_accuracy(superpixels: np.ndarray,
                                     gt: np.ndarray,
                                     ignore_index: int = 255,
                                     empty_value: float = float('nan')) -> float:  # yapf: disable
    """Achievable segmentation accuracy of a superpixel map w.r.t. ground truth.

    Args:
        superpixels (np.ndarray): Integer superpixel id map, shape (H, W) or (1, H, W).
        gt (np.ndarray): Integer ground-truth class map, same shape.
        ignore_index (int): Ground-truth label excluded from the evaluation. Defaults to 255.
        empty_value (float): Returned when no pixel is labelled. Defaults to NaN.

    Returns:
        float: ASA in [0, 1].
    """
    best, labelled = asa_counts(superpixels, gt, ignore_index=ignore_index)
    if labelled == 0:
        return float(empty_value)
    return best / labelled


def _as_long_tensor(gt) -> torch.Tensor:
    if isinstance(gt, torch.Tensor):
        gt = gt.detach().cpu()
    else:
        gt = np.asarray(gt)
        if not np.issubdtype(gt.dtype, np.integer):
            raise TypeError(f'gt must be an integer label map, got dtype {gt.dtype}')
        gt = torch.from_numpy(gt.astype(np.int64))
    if gt.is_floating_point():
        raise TypeError(f'gt must be an integer label map, got dtype {gt.dtype}')
    if gt.dim() == 3 and gt.shape[0] == 1:
        gt = gt[0]
    if gt.dim() != 2:
        raise ValueError(f'gt must be a 2D label map (H, W) or (1, H, W), got shape '
                         f'{tuple(gt.shape)}')
    return gt.long()


def _levels_of(assignments, levels) -> Tuple[int, ...]:
    """The fine stride of each assignment, finest first (default: 4, 8, ... as many as there
    are assignments); consecutive powers of two, as the neck builds them."""
    if levels is None:
        levels = [4 * 2**i for i in range(len(assignments))]
    levels = tuple(int(s) for s in levels)
    if len(levels) != len(assignments):
        raise ValueError(f'{len(assignments)} assignments but levels {levels}')
    if levels[0] < 2 or levels[0] & (levels[0] - 1) or any(
            b != 2 * a for a, b in zip(levels[:-1], levels[1:])):
        raise ValueError(f'levels must be consecutive powers of two >= 2, finest first, got '
                         f'{levels}')
    return levels


def assignment_grid(height: int, width: int, levels: Sequence[int]) -> Tuple[int, int]:
    """The grid of the finest learned assignment A(levels[0]) for an ``height x width`` label
    map: the image padded bottom/right to a multiple of the coarsest stride ``2 * levels[-1]``,
    divided by ``levels[0]``.

    Args:
        height (int): H.
        width (int): W.
        levels (Sequence[int]): fine stride of each learned assignment, finest first.

    Returns:
        tuple[int, int]: ``(h, w)`` of A(levels[0]).
    """
    top, fine = 2 * int(levels[-1]), int(levels[0])
    return -(-height // top) * top // fine, -(-width // top) * top // fine


def _check_geometry(gt: torch.Tensor, maps: Sequence[torch.Tensor], levels) -> tuple:
    """``(strides, grid)``: the assignments' fine strides and the grid of the finest one
    (:func:`assignment_grid`), which ``maps[0]`` must have for ``gt``; else a ValueError."""
    strides = _levels_of(maps, levels)
    H, W = gt.shape
    grid = assignment_grid(H, W, strides)
    if tuple(maps[0].shape[-2:]) != grid:
        raise ValueError(
            f'assignments[0] has a {tuple(maps[0].shape[-2:])} grid but a {H}x{W} label map '
            f'needs the stride-{strides[0]} grid {grid} (the image padded to a multiple of '
            f'{2 * strides[-1]}); are gt and the assignments in the same geometry?')
    return strides, grid


def _labelled(gt: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """The mask of labelled pixels; a ValueError for labels outside ``[0, num_classes)``."""
    labelled = gt != ignore_index
    bad = labelled & ((gt < 0) | (gt >= num_classes))
    if bool(bad.any()):
        raise ValueError(f'gt has labels outside [0, {num_classes}) other than ignore_index '
                         f'{ignore_index}: {sorted(gt[bad].unique().tolist())[:10]}')
    return labelled


def asa_from_assignments_counts(gt,
                                assignments: Sequence[torch.Tensor],
                                num_classes: int,
                                ignore_index: int = 255,
                                levels: Sequence[int] = None) -> Tuple[int, int]:
    """Eq. 8, ``ASA(A, y) = ACC(q(y, A), y)``, as ``(correct, labelled)`` pixel counts.

    ``y`` is the one-hot encoding of the labelled pixels (ignored pixels: the zero vector),
    ``A = [A(1), ..., A(f/2), A(f), ...]`` with the fixed box assignments below the finest
    learned stride ``f = levels[0]`` (each pixel to its own cell) and the model's soft ones;
    then ``q(y, A) = nearest_up_f(q(cellmean_f(y), assignments))`` (eq. 3 through
    :func:`mmseg_spixreg.ops.superpixel_reconstruct`, in float64). For the paper's levels
    (4, 8): ``nearest_up4(q(cellmean4(y), [A4, A8]))``. The predicted class of a pixel is the
    argmax of its reconstruction (ties: the lowest class index) and ACC is the fraction of
    labelled pixels where it equals the label.

    Geometry: ``gt`` covers the top-left of the stride-f grid. The grid must be the smallest one
    the hierarchy allows (:func:`assignment_grid`: the image padded bottom/right to a multiple
    of the coarsest stride ``2 * levels[-1]``; ``4 * ceil(H / 16)`` rows of A(4) for (4, 8));
    pixels of that padding are unlabelled.

    Args:
        gt (np.ndarray | Tensor): (H, W) or (1, H, W) integer labels in ``[0, num_classes)`` or
            ``ignore_index``.
        assignments (Sequence[Tensor]): [A(levels[0]), ...] (1, 9, h, w) each (or (9, h, w)),
            finest first, at the strides ``levels`` of ``gt``; each pixel's 9 weights sum to 1.
        num_classes (int): number of classes C.
        ignore_index (int): label of unlabelled pixels. Defaults to 255.
        levels (Sequence[int], optional): fine stride of each assignment, finest first, as the
            prediction's ``pred_assignments.levels`` gives them. Defaults to (4, 8, ...).

    Returns:
        tuple[int, int]: ``(correct, labelled)``.
    """
    gt = _as_long_tensor(gt)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
    if isinstance(assignments, torch.Tensor) or not isinstance(assignments, (list, tuple)) \
            or len(assignments) == 0:
        raise ValueError('assignments must be a non-empty list [A4, A8, ...] of (1, 9, h, w) '
                         f'tensors, got {type(assignments).__name__}')
    maps = []
    for i, a in enumerate(assignments):
        if not isinstance(a, torch.Tensor):
            raise ValueError(f'assignments[{i}] must be a tensor, got {type(a).__name__}')
        if a.dim() == 3:
            a = a[None]
        if a.dim() != 4 or a.shape[0] != 1 or a.shape[1] != 9:
            raise ValueError(f'assignments[{i}] must be (1, 9, h, w), got {tuple(a.shape)}')
        maps.append(a.detach().cpu().double())
    strides, expected = _check_geometry(gt, maps, levels)
    fine = strides[0]
    labelled = _labelled(gt, num_classes, ignore_index)
    n = int(labelled.sum())
    if n == 0:
        return 0, 0
    hf, wf = expected
    # the box levels: the mean over each f x f cell of the one-hot labels = class counts / f^2
    rows, cols = torch.nonzero(labelled, as_tuple=True)
    labels = gt[rows, cols]
    cell = (rows // fine) * wf + cols // fine
    counts = torch.bincount(cell * num_classes + labels, minlength=hf * wf * num_classes)
    yf = (counts.double() / fine**2).view(hf, wf, num_classes).permute(2, 0, 1)[None]
    # eq. 3 through the learned levels; argmax per cell, broadcast to the cell's pixels
    q = superpixel_reconstruct(yf.contiguous(), maps)
    cell_pred = q[0].argmax(dim=0).reshape(-1)
    correct = int((cell_pred[cell] == labels).sum())
    return correct, n


def asa_from_assignments(gt,
                         assignments: Sequence[torch.Tensor],
                         num_classes: int,
                         ignore_index: int = 255,
                         levels: Sequence[int] = None) -> float:
    """ASA of the model's soft superpixels, eq. 8 (see :func:`asa_from_assignments_counts`).

    Args:
        gt (np.ndarray | Tensor): (H, W) integer labels.
        assignments (Sequence[Tensor]): [A(levels[0]), ...], (1, 9, h, w) each.
        num_classes (int): number of classes.
        ignore_index (int): label of unlabelled pixels. Defaults to 255.
        levels (Sequence[int], optional): their fine strides. Defaults to (4, 8, ...).

    Returns:
        float: in [0, 1]; NaN when no pixel is labelled.
    """
    correct, labelled = asa_from_assignments_counts(gt, assignments, num_classes, ignore_index,
                                                    levels)
    return correct / labelled if labelled else float('nan')


# ---------------------------------------------------------------------------------------------
# Pixel accuracy and ASA as the thesis's own code measures them (``protocol='original'``)
# ---------------------------------------------------------------------------------------------
def pixel_accuracy_original(pred, gt, ignore_index: int = 255) -> float:
    """Pixel accuracy of one image as the original code computes it (``PixAcc_orig``).

    ``correct labelled / (labelled + 1e-6)``: 0 for an image without labelled pixel (which still
    counts in the dataset's mean over images).

    Args:
        pred (np.ndarray): (H, W) predicted labels.
        gt (np.ndarray): (H, W) ground truth, same shape.
        ignore_index (int): void label. Defaults to 255.

    Returns:
        float: in [0, 1).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs {gt.shape}')
    labelled = gt != ignore_index
    return np.count_nonzero((pred == gt) & labelled) / (np.count_nonzero(labelled) + 1e-6)


def one_hot_bilinear_to_grid(gt: torch.Tensor,
                             num_classes: int,
                             grid,
                             ignore_index: int = 255,
                             stride: int = 4):
    """The one-hot ground truth bilinearly resized to the finest assignment grid.

    Void pixels are the zero vector. The map is zero-padded (bottom/right) to ``stride * grid``
    (the input the network saw, a multiple of its coarsest stride), then resized by
    ``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing: each cell value
    is the bilinear sample at the cell centre, i.e. the mean of the 2x2 pixels around it
    (``(4i + 1, 4i + 2) x (4j + 1, 4j + 2)`` for stride 4), not the mean of the cell. Computed as
    exactly that mean of four class counts (equal to ``F.interpolate`` up to float rounding,
    ``tests/test_evaluation/test_functional/``), without the full-resolution one-hot map.

    Args:
        gt (Tensor): (H, W) int64 labels in ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): C.
        grid (tuple[int, int]): (h, w), the grid of the finest assignment.
        ignore_index (int): void label. Defaults to 255.
        stride (int): its stride (an even resize factor). Defaults to 4.

    Returns:
        Tensor: (1, C, h, w) float32.
    """
    H, W = gt.shape
    h4, w4 = int(grid[0]), int(grid[1])
    padded = F.pad(gt, (0, stride * w4 - W, 0, stride * h4 - H), value=ignore_index)
    cell = torch.arange(h4 * w4).view(h4, w4)
    counts = torch.zeros(h4 * w4 * num_classes + 1, dtype=torch.float32)
    centre = (stride // 2 - 1, stride // 2)
    for dy in centre:
        for dx in centre:
            labels = padded[dy::stride, dx::stride]
            # void (and padding) goes to the spare last bin
            index = torch.where(labels == ignore_index, h4 * w4 * num_classes,
                                cell * num_classes + labels.clamp(0, num_classes - 1))
            counts += torch.bincount(index.reshape(-1), minlength=counts.numel()).float()
    y4 = counts[:-1].view(h4, w4, num_classes).permute(2, 0, 1) / 4.0
    return y4[None].contiguous()


def asa_original(gt,
                 assignments: Sequence[torch.Tensor],
                 num_classes: int,
                 ignore_index: int = 255,
                 levels: Sequence[int] = None) -> float:
    """ASA of one image as the original code computes it (``ASA_orig``).

    The one-hot ground truth goes to the grid of the finest learned assignment bilinearly
    (:func:`one_hot_bilinear_to_grid`), is reconstructed through ``q(., assignments)`` (down
    then up), resized bilinearly (align_corners False) back to the pixels and arg-maxed over the
    classes (ties: the lowest class); ``correct labelled / (labelled + 1e-6)``. Eq. 8 as
    implemented by :func:`asa_from_assignments_counts` uses the cell means and nearest
    upsampling instead (the box levels).

    Args:
        gt (np.ndarray | Tensor): (H, W) integer labels.
        assignments (Sequence[Tensor]): [A(levels[0]), ...], (1, 9, h, w) each, on the grid of
            :func:`assignment_grid` (as for eq. 8).
        num_classes (int): number of classes C.
        ignore_index (int): void label. Defaults to 255.
        levels (Sequence[int], optional): their fine strides. Defaults to (4, 8, ...).

    Returns:
        float: in [0, 1); 0 without labelled pixels.
    """
    gt = _as_long_tensor(gt)
    # float32, as the original's PyTorch code
    maps = [a.detach().cpu().float() for a in assignments]
    maps = [a[None] if a.dim() == 3 else a for a in maps]
    if not maps:
        raise ValueError('asa_original: no assignments')
    strides, expected = _check_geometry(gt, maps, levels)
    fine = strides[0]
    H, W = gt.shape
    labelled = _labelled(gt, num_classes, ignore_index)
    yf = one_hot_bilinear_to_grid(gt, num_classes, expected, ignore_index, stride=fine)
    q = superpixel_reconstruct(yf, maps)
    q = F.interpolate(
        q, size=(fine * expected[0], fine * expected[1]), mode='bilinear',
        align_corners=False)[0, :, :H, :W]
    correct = int(((q.argmax(dim=0) == gt) & labelled).sum())
    return correct / (int(labelled.sum()) + 1e-6)
