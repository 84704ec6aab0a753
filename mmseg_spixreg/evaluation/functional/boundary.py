# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Boundary recall (BR) of a segmentation or superpixel map against ground truth.

Two definitions, selected by ``mode``:

* ``'stutz'`` (default): the standard boundary recall of Stutz et al. ("Superpixels: An
  evaluation of the state-of-the-art", CVIU 2018): a ground-truth boundary pixel is *recalled*
  (a true positive) if a predicted boundary pixel lies inside the ``(2r+1) x (2r+1)`` square
  window centred on it, otherwise it is a false negative; ``BR = TP / (TP + FN)``.
* ``'paper'``: eq. 7 of the paper,
  ``BR = n(b(y1, 0) ∩ b(y, r)) / (n(b(y1, 0) ∩ b(y, r)) + n(b(y, 0) − b(y1, r)))`` with y1 the
  prediction, y the ground truth and ``b(y, r)`` the pixels within r of a boundary pixel of y.
  Its numerator counts *predicted* boundary pixels within r of a ground-truth boundary; its
  second denominator term counts the ground-truth boundary pixels no predicted boundary comes
  within r of. "Within r" is the same ``(2r+1) x (2r+1)`` square window as above (the paper
  does not name the distance).

Common to both:

* A pixel is a *boundary pixel* of a label map if at least one of its 4-neighbours carries a
  different label. Both sides of a label edge are therefore boundary pixels.
* ``r`` defaults to ``round(0.0025 * diagonal)`` (rounded half away from zero, as C++'s
  ``std::round`` in Stutz's benchmark), e.g. 2 px for CamVid's 480x360 and 3 px for 1024x512.

Ignored pixels (``ignore_index``) in the ground truth:

* They are never ground-truth boundary pixels themselves.
* A label change between a labelled pixel and an ignored neighbour is *not* a ground-truth
  boundary: a labelled pixel is a ground-truth boundary pixel only if one of its 4-neighbours is
  labelled with a different class. Coarse annotations (labelled polygons surrounded by void) thus
  contribute no boundaries along the void region, only where two labelled classes touch.
* Predicted boundaries are taken from the whole prediction, including where the ground truth is
  ignored, because a predicted boundary pixel inside an ignored band can still recall a
  ground-truth boundary pixel within ``r``.

Empty ground-truth boundary (no labelled 4-neighbour pair with different classes, e.g. a single
class image or an all-void crop): there is nothing to recall and nothing was missed, so
:func:`boundary_recall` returns ``empty_value`` (default ``1.0``; pass ``float('nan')`` to mark
such images as undefined). Dataset-level metrics pool the counts from
:func:`boundary_recall_counts` instead, so such images contribute nothing to either side.
"""
import math
from typing import Optional, Tuple

import cv2
import numpy as np


def default_tolerance(height: int, width: int) -> int:
    """Default BR tolerance ``r = round(0.0025 * sqrt(H^2 + W^2))``.

    Args:
        height (int): Image height H in pixels.
        width (int): Image width W in pixels.

    Returns:
        int: The tolerance radius r in pixels (half rounded away from zero).
    """
    return int(math.floor(0.0025 * math.hypot(height, width) + 0.5))


def _check_2d(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f'{name} must be a 2D label map (H, W) or (1, H, W), '
                         f'got shape {array.shape}')
    return array


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``gt`` as 2D label maps of one shape (ValueError otherwise)."""
    pred, gt = _check_2d('pred', pred), _check_2d('gt', gt)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs {gt.shape}')
    return pred, gt


def boundary_map(labels: np.ndarray, ignore_index: Optional[int] = None) -> np.ndarray:
    """Boundary pixels of a label map under 4-connectivity.

    Args:
        labels (np.ndarray): Integer label map, shape (H, W).
        ignore_index (int, optional): Label of ignored pixels. If given, ignored pixels are never
            boundary pixels and a change towards an ignored neighbour does not make a boundary.
            If None, every label (including 255) is an ordinary region. Defaults to None.

    Returns:
        np.ndarray: Boolean map, shape (H, W); True where a 4-neighbour has another label.
    """
    labels = _check_2d('labels', labels)
    # Differences between horizontal / vertical neighbour pairs, shapes (H, W-1) and (H-1, W).
    diff_h = labels[:, 1:] != labels[:, :-1]
    diff_v = labels[1:, :] != labels[:-1, :]
    if ignore_index is not None:
        valid = labels != ignore_index
        diff_h &= valid[:, 1:] & valid[:, :-1]
        diff_v &= valid[1:, :] & valid[:-1, :]
    boundary = np.zeros(labels.shape, dtype=bool)
    boundary[:, 1:] |= diff_h
    boundary[:, :-1] |= diff_h
    boundary[1:, :] |= diff_v
    boundary[:-1, :] |= diff_v
    return boundary


BR_MODES = ('stutz', 'paper')


def _dilate(boundary: np.ndarray, r: int) -> np.ndarray:
    """``b(., r)``: pixels with a boundary pixel in their ``(2r+1) x (2r+1)`` window."""
    if r == 0:
        return boundary
    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    # Pixels outside the image are not boundaries: constant border of 0.
    return cv2.dilate(
        boundary.view(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)


def boundary_recall_counts(pred: np.ndarray,
                           gt: np.ndarray,
                           r: Optional[int] = None,
                           ignore_index: Optional[int] = 255,
                           mode: str = 'stutz') -> Tuple[int, int]:
    """Numerator and denominator of BR (``mode`` 'stutz' or 'paper', see the module docstring).

    Args:
        pred (np.ndarray): Predicted label or superpixel map, shape (H, W) or (1, H, W).
        gt (np.ndarray): Ground-truth label map, same shape as ``pred``.
        r (int, optional): Tolerance radius in pixels; None for
            :func:`default_tolerance`. Defaults to None.
        ignore_index (int, optional): Ground-truth label that is ignored (see the module
            docstring). None disables ignoring. Defaults to 255.
        mode (str): 'stutz' (standard BR) or 'paper' (eq. 7). Defaults to 'stutz'.

    Returns:
        tuple[int, int]: 'stutz': ``(tp, n_gt)``, the recalled ground-truth boundary pixels and
        all ground-truth boundary pixels (``tp + fn``). 'paper': ``(n(b(y1, 0) ∩ b(y, r)),
        n(b(y1, 0) ∩ b(y, r)) + n(b(y, 0) − b(y1, r)))``. ``(0, 0)`` when ``gt`` has no boundary.
    """
    if mode not in BR_MODES:
        raise ValueError(f'boundary recall mode must be one of {BR_MODES}, got {mode!r}')
    pred, gt = _check_pair(pred, gt)
    if r is None:
        r = default_tolerance(*gt.shape)
    if r < 0:
        raise ValueError(f'tolerance r must be >= 0, got {r}')
    gt_boundary = boundary_map(gt, ignore_index)
    n_gt = int(np.count_nonzero(gt_boundary))
    if n_gt == 0:
        return 0, 0
    pred_boundary = boundary_map(pred)
    # gt boundary pixels with a predicted boundary pixel within r (recalled)
    tp = int(np.count_nonzero(_dilate(pred_boundary, r) & gt_boundary))
    if mode == 'stutz':
        return tp, n_gt
    near = int(np.count_nonzero(pred_boundary & _dilate(gt_boundary, r)))
    return near, near + (n_gt - tp)


def boundary_recall(pred: np.ndarray,
                    gt: np.ndarray,
                    r: Optional[int] = None,
                    ignore_index: Optional[int] = 255,
                    mode: str = 'stutz',
                    empty_value: float = 1.0) -> float:
    """Boundary recall of ``pred``'s boundaries w.r.t. ``gt``'s boundaries.

    Args:
        pred (np.ndarray): Predicted label or superpixel map, shape (H, W) or (1, H, W).
        gt (np.ndarray): Ground-truth label map, same shape as ``pred``.
        r (int, optional): Tolerance radius; the window is ``(2r+1) x (2r+1)``. None for
            ``round(0.0025 * diagonal)``. Defaults to None.
        ignore_index (int, optional): Ignored ground-truth label; boundaries against ignored
            pixels do not count. None disables ignoring. Defaults to 255.
        mode (str): 'stutz': the standard ``TP / (TP + FN)``; 'paper': eq. 7 of the paper
            (see the module docstring). Defaults to 'stutz'.
        empty_value (float): Returned when ``gt`` has no boundary pixel (nothing to recall).
            Defaults to 1.0.

    Returns:
        float: BR in [0, 1], or ``empty_value`` for an empty gt boundary.
    """
    num, den = boundary_recall_counts(pred, gt, r=r, ignore_index=ignore_index, mode=mode)
    if den == 0:
        return float(empty_value)
    return num / den


# ---------------------------------------------------------------------------------------------
# BR as the thesis's own code measures it (``protocol='original'``, reported as ``BR_orig``)
# ---------------------------------------------------------------------------------------------
def original_tolerance(height: int, width: int) -> int:
    """Hood width of the original code: ``round(0.0025 * sqrt(H^2 + W^2))``.

    Python's ``round`` (half to even, as the original's Python code): 0.5 -> 0, 1.5 -> 2; it
    differs from :func:`default_tolerance` (half away from zero) only at an exact half, e.g. a
    160x120 map (0.5: 0 here, 1 there).

    Args:
        height (int): Image height H in pixels.
        width (int): Image width W in pixels.

    Returns:
        int: r in pixels.
    """
    return int(round(0.0025 * math.hypot(height, width)))


def _window(k: int) -> np.ndarray:
    return np.ones((2 * k + 1, 2 * k + 1), np.uint8)


def near_other_class(labels: np.ndarray, k: int, labelled: np.ndarray) -> np.ndarray:
    """Labelled pixels whose ``(2k+1) x (2k+1)`` window holds a labelled pixel of another class.

    The window is clipped at the image border (outside does not count); with ``k = 1`` it is the
    8-neighbourhood. Computed as the window maximum and minimum of the labels over the labelled
    pixels: another class is present iff either differs from the centre's label.

    Args:
        labels (np.ndarray): (H, W) integer label map.
        k (int): window half-width (>= 0; 0 gives an empty map).
        labelled (np.ndarray): (H, W) bool, the pixels that carry a class.

    Returns:
        np.ndarray: (H, W) bool.
    """
    if k == 0:
        return np.zeros(labels.shape, bool)
    if labels.size and 0 <= labels.min(initial=0, where=labelled) \
            and labels.max(initial=0, where=labelled) < 255:
        # uint8 (3-4x faster morphology): labels + 1 in 1..255, void 0 for the maximum and 255
        # (above every label + 1) for the minimum
        values = labels.astype(np.uint8) + np.uint8(1)
        void_high, void_low = np.uint8(0), np.uint8(255)
    else:
        values = labels.astype(np.float32)
        void_high, void_low = np.float32(-1), np.float32(np.inf)
    # cv2's default border for dilate / erode leaves outside pixels out of the max / min
    high = cv2.dilate(np.where(labelled, values, void_high), _window(k))
    low = cv2.erode(np.where(labelled, values, void_low), _window(k))
    return labelled & ((high > values) | (low < values))


def near_void(labelled: np.ndarray, k: int) -> np.ndarray:
    """Pixels whose ``(2k+1) x (2k+1)`` window (clipped at the border) holds a void pixel.

    Args:
        labelled (np.ndarray): (H, W) bool, False where the label is void.
        k (int): window half-width (>= 0).

    Returns:
        np.ndarray: (H, W) bool.
    """
    void = (~labelled).astype(np.uint8)
    if k == 0:
        return void.astype(bool)
    return cv2.dilate(void, _window(k)).astype(bool)


def original_boundary_band(labels: np.ndarray,
                           k: int,
                           ignore_index: Optional[int] = 255) -> np.ndarray:
    """``N_k(y)`` of the original code: :func:`near_other_class` minus :func:`near_void`.

    ``b0 = N_1`` is the (8-connected) boundary, ``N_r`` the hood. A prediction has no void
    (``ignore_index=None``), so only the first rule applies to it.

    Args:
        labels (np.ndarray): (H, W) integer label map.
        k (int): window half-width.
        ignore_index (int, optional): void label; None: every pixel is labelled.

    Returns:
        np.ndarray: (H, W) bool.
    """
    labels = _check_2d('labels', labels)
    if k < 0:
        raise ValueError(f'window half-width k must be >= 0, got {k}')
    labelled = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    band = near_other_class(labels, k, labelled)
    if ignore_index is not None:
        band &= ~near_void(labelled, k)
    return band


def boundary_recall_original(pred: np.ndarray,
                             gt: np.ndarray,
                             r: Optional[int] = None,
                             ignore_index: Optional[int] = 255) -> float:
    """Boundary recall as the thesis's own code computes it for one image (``BR_orig``).

    ``tp = |N_1(pred) & N_r(gt)|``, ``fn = |N_1(gt) & ~N_r(pred)|``,
    ``BR = tp / (tp + fn + 1e-5)`` (:func:`original_boundary_band`); 0 when the ground truth has
    no boundary. Datasets take the mean of this over images.

    Args:
        pred (np.ndarray): (H, W) predicted labels.
        gt (np.ndarray): (H, W) ground truth, same shape.
        r (int, optional): hood width; None for :func:`original_tolerance`. Defaults to None.
        ignore_index (int, optional): void label of ``gt``. Defaults to 255.

    Returns:
        float: in [0, 1).
    """
    pred, gt = _check_pair(pred, gt)
    if r is None:
        r = original_tolerance(*gt.shape)
    tp = np.count_nonzero(
        original_boundary_band(pred, 1, None) & original_boundary_band(gt, r, ignore_index))
    fn = np.count_nonzero(
        original_boundary_band(gt, 1, ignore_index) & ~original_boundary_band(pred, r, None))
    return tp / (tp + fn + 1e-5)
