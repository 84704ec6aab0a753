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


def asa_from_assignments_counts(gt,
                                assignments: Sequence[torch.Tensor],
                                num_classes: int,
                                ignore_index: int = 255) -> Tuple[int, int]:
    """Eq. 8, ``ASA(A, y) = ACC(q(y, A), y)``, as ``(correct, labelled)`` pixel counts.

    ``y`` is the one-hot encoding of the labelled pixels (ignored pixels: the zero vector),
    ``A = [A(1), A(2), A(4), A(8)]`` with the fixed box assignments A(1), A(2) (each pixel to its
    own cell) and the model's soft A(4), A(8); then ``q(y, A) = nearest_up4(q(cellmean4(y),
    [A4, A8]))`` (eq. 3 through :func:`mmseg_spixreg.ops.superpixel_reconstruct`, in float64).
    The predicted class of a pixel is the argmax of its reconstruction (ties: the lowest class
    index) and ACC is the fraction of labelled pixels where it equals the label.

    Geometry: ``gt`` covers the top-left of the stride-4 grid. The grid must be the smallest one
    the hierarchy allows: A(4) of ``(2**L * ceil(H / (4 * 2**L)), ...)`` cells for L learned
    levels (``4 * ceil(H / 16)`` rows for [A4, A8]), i.e. the image padded bottom/right to a
    multiple of the coarsest stride; pixels of that padding are unlabelled.

    Args:
        gt (np.ndarray | Tensor): (H, W) or (1, H, W) integer labels in ``[0, num_classes)`` or
            ``ignore_index``.
        assignments (Sequence[Tensor]): [A4, A8] (1, 9, h, w) each (or (9, h, w)), finest first,
            at stride 4 and 8 of ``gt``; each pixel's 9 weights sum to 1.
        num_classes (int): number of classes C.
        ignore_index (int): label of unlabelled pixels. Defaults to 255.

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
    levels = []
    for i, a in enumerate(assignments):
        if not isinstance(a, torch.Tensor):
            raise ValueError(f'assignments[{i}] must be a tensor, got {type(a).__name__}')
        if a.dim() == 3:
            a = a[None]
        if a.dim() != 4 or a.shape[0] != 1 or a.shape[1] != 9:
            raise ValueError(f'assignments[{i}] must be (1, 9, h, w), got {tuple(a.shape)}')
        levels.append(a.detach().cpu().double())
    H, W = gt.shape
    top = 4 * 2**len(levels)
    expected = (-(-H // top) * top // 4, -(-W // top) * top // 4)
    if tuple(levels[0].shape[-2:]) != expected:
        raise ValueError(
            f'assignments[0] has a {tuple(levels[0].shape[-2:])} grid but a {H}x{W} label map '
            f'needs the stride-4 grid {expected} (the image padded to a multiple of {top}); are '
            f'gt and the assignments in the same geometry?')
    labelled = gt != ignore_index
    bad = labelled & ((gt < 0) | (gt >= num_classes))
    if bool(bad.any()):
        raise ValueError(f'gt has labels outside [0, {num_classes}) other than ignore_index '
                         f'{ignore_index}: {sorted(gt[bad].unique().tolist())[:10]}')
    n = int(labelled.sum())
    if n == 0:
        return 0, 0
    h4, w4 = expected
    # box A(1), A(2): the mean over each 4x4 cell of the one-hot labels = class counts / 16
    rows, cols = torch.nonzero(labelled, as_tuple=True)
    labels = gt[rows, cols]
    cell = (rows // 4) * w4 + cols // 4
    counts = torch.bincount(cell * num_classes + labels, minlength=h4 * w4 * num_classes)
    y4 = (counts.double() / 16.0).view(h4, w4, num_classes).permute(2, 0, 1)[None]
    # eq. 3 through the learned levels; argmax per cell, broadcast to the cell's pixels
    q = superpixel_reconstruct(y4.contiguous(), levels)
    cell_pred = q[0].argmax(dim=0).reshape(-1)
    correct = int((cell_pred[cell] == labels).sum())
    return correct, n


def asa_from_assignments(gt,
                         assignments: Sequence[torch.Tensor],
                         num_classes: int,
                         ignore_index: int = 255) -> float:
    """ASA of the model's soft superpixels, eq. 8 (see :func:`asa_from_assignments_counts`).

    Args:
        gt (np.ndarray | Tensor): (H, W) integer labels.
        assignments (Sequence[Tensor]): [A4, A8], (1, 9, h, w) each at stride 4 and 8 of gt.
        num_classes (int): number of classes.
        ignore_index (int): label of unlabelled pixels. Defaults to 255.

    Returns:
        float: in [0, 1]; NaN when no pixel is labelled.
    """
    correct, labelled = asa_from_assignments_counts(gt, assignments, num_classes, ignore_index)
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


def one_hot_bilinear_to_grid(gt: torch.Tensor, num_classes: int, grid, ignore_index: int = 255):
    """The one-hot ground truth bilinearly resized to the finest assignment grid.

    Void pixels are the zero vector. The map is zero-padded (bottom/right) to ``4 * grid`` (the
    input the network saw, a multiple of its coarsest stride; no padding when H and W are
    multiples of 16), then resized by ``F.interpolate(mode='bilinear', align_corners=False)``
    without antialiasing: each cell value is the bilinear sample at the cell centre, i.e. the
    mean of the 2x2 pixels (4i + 1, 4i + 2) x (4j + 1, 4j + 2), not the mean of the 4x4 cell.
    Computed as exactly that mean of four class counts (the resize factor is always 4; equal to
    ``F.interpolate`` up to float rounding, ``tests/test_evaluation/test_functional/``), without
    the full-resolution one-hot map.

    Args:
        gt (Tensor): (H, W) int64 labels in ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): C.
        grid (tuple[int, int]): (h4, w4), the grid of A(4).
        ignore_index (int): void label. Defaults to 255.

    Returns:
        Tensor: (1, C, h4, w4) float32.
    """
    H, W = gt.shape
    h4, w4 = int(grid[0]), int(grid[1])
    padded = F.pad(gt, (0, 4 * w4 - W, 0, 4 * h4 - H), value=ignore_index)
    cell = torch.arange(h4 * w4).view(h4, w4)
    counts = torch.zeros(h4 * w4 * num_classes + 1, dtype=torch.float32)
    for dy in (1, 2):
        for dx in (1, 2):
            labels = padded[dy::4, dx::4]
            # void (and padding) goes to the spare last bin
            index = torch.where(labels == ignore_index, h4 * w4 * num_classes,
                                cell * num_classes + labels.clamp(0, num_classes - 1))
            counts += torch.bincount(index.reshape(-1), minlength=counts.numel()).float()
    y4 = counts[:-1].view(h4, w4, num_classes).permute(2, 0, 1) / 4.0
    return y4[None].contiguous()


def asa_original(gt, assignments: Sequence[torch.Tensor], num_classes: int,
                 ignore_index: int = 255) -> float:
    """ASA of one image as the original code computes it (``ASA_orig``).

    The one-hot ground truth goes to the A(4) grid bilinearly
    (:func:`one_hot_bilinear_to_grid`), is reconstructed through ``q(., [A4, A8])`` (down then
    up), resized bilinearly (align_corners False) back to the pixels and arg-maxed over the
    classes (ties: the lowest class); ``correct labelled / (labelled + 1e-6)``. Eq. 8 as
    implemented by :func:`asa_from_assignments_counts` uses the 4x4 cell means and nearest
    upsampling instead (the box A(1), A(2)).

    Args:
        gt (np.ndarray | Tensor): (H, W) integer labels.
        assignments (Sequence[Tensor]): [A4, A8], (1, 9, h, w) each, at stride 4 and 8 of gt
            (the grid of gt padded to a multiple of 16, as for eq. 8).
        num_classes (int): number of classes C.
        ignore_index (int): void label. Defaults to 255.

    Returns:
        float: in [0, 1); 0 without labelled pixels.
    """
    gt = _as_long_tensor(gt)
    # float32, as the original's PyTorch code
    levels = [a.detach().cpu().float() for a in assignments]
    levels = [a[None] if a.dim() == 3 else a for a in levels]
    H, W = gt.shape
    top = 4 * 2**len(levels)
    expected = (-(-H // top) * top // 4, -(-W // top) * top // 4)
    if len(levels) == 0 or tuple(levels[0].shape[-2:]) != expected:
        raise ValueError(f'asa_original: assignments[0] must be on the stride-4 grid {expected} '
                         f'of a {H}x{W} label map, got '
                         f'{[tuple(a.shape) for a in levels]}')
    labelled = gt != ignore_index
    bad = labelled & ((gt < 0) | (gt >= num_classes))
    if bool(bad.any()):
        raise ValueError(f'gt has labels outside [0, {num_classes}) other than ignore_index '
                         f'{ignore_index}: {sorted(gt[bad].unique().tolist())[:10]}')
    y4 = one_hot_bilinear_to_grid(gt, num_classes, expected, ignore_index)
    q = superpixel_reconstruct(y4, levels)
    q = F.interpolate(q, size=(4 * expected[0], 4 * expected[1]), mode='bilinear',
                      align_corners=False)[0, :, :H, :W]
    correct = int(((q.argmax(dim=0) == gt) & labelled).sum())
    return correct / (int(labelled.sum()) + 1e-6)
