# Copyright (c) mmseg_spixreg contributors. All rights reserved.
"""Achievable segmentation accuracy (ASA) of a superpixel map.

``ASA = sum_s max_c |s ∩ g_c| / |labelled pixels|``: the pixel accuracy of the best labelling
that assigns one class to each superpixel. Computed from the superpixel x class contingency table,
built with one ``np.bincount`` over combined ids (``superpixel * num_classes + class``) or, when
that table would be large and sparse, from ``np.unique`` over the same combined ids. Pixels whose
ground truth equals ``ignore_index`` are excluded from numerator and denominator.
"""
from typing import Tuple

import numpy as np

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
    if not (np.issubdtype(superpixels.dtype, np.integer)
            and np.issubdtype(gt.dtype, np.integer)):
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


def asa_counts(superpixels: np.ndarray, gt: np.ndarray,
               ignore_index: int = 255) -> Tuple[int, int]:
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


def achievable_segmentation_accuracy(superpixels: np.ndarray,
                                     gt: np.ndarray,
                                     ignore_index: int = 255,
                                     empty_value: float = float('nan')) -> float:
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
