# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Boundary recall (mmseg_spixreg.evaluation.functional.boundary) against a slow, literal
reference, known answers and real CamVid labels."""
import math
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_spixreg.evaluation import (boundary_map, boundary_recall, boundary_recall_counts,
                                      default_tolerance)
from tests.utils import CAMVID_ROOT, blocky_label_maps, edge_map

needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID_ROOT, 'valannot')),
    reason=f'real CamVid data not found at {CAMVID_ROOT}')


# --------------------------------------------------------------------------- reference
def reference_counts(pred, gt, r, ignore_index):
    """Slow, literal BR: explicit loops over pixels, neighbours and the window."""
    h, w = gt.shape

    def is_boundary(label, y, x, ignore):
        if ignore is not None and label[y, x] == ignore:
            return False
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w:
                if ignore is not None and label[yy, xx] == ignore:
                    continue
                if label[yy, xx] != label[y, x]:
                    return True
        return False

    tp = n = 0
    for y in range(h):
        for x in range(w):
            if not is_boundary(gt, y, x, ignore_index):
                continue
            n += 1
            hit = any(
                is_boundary(pred, yy, xx, None) for yy in range(max(0, y - r), min(h, y + r + 1))
                for xx in range(max(0, x - r), min(w, x + r + 1)))
            tp += hit
    return tp, n


# --------------------------------------------------------------------------- BR
def test_boundary_map_marks_both_sides_of_an_edge():
    b = boundary_map(edge_map(4, 6, 3))
    assert b[:, 2].all() and b[:, 3].all()
    assert b.sum() == 8


def test_br_identical_maps_is_one():
    gt = edge_map(20, 20, 7)
    gt[12:, :] = 2
    for r in (0, 1, None):
        assert boundary_recall(gt, gt, r=r) == 1.0


def test_br_r0_known_answer():
    gt = edge_map(10, 10, 5)  # gt boundary pixels: columns 4 and 5 (20 px)
    pred = edge_map(10, 10, 6)  # pred boundary pixels: columns 5 and 6
    assert boundary_recall_counts(pred, gt, r=0) == (10, 20)
    assert boundary_recall(pred, gt, r=0) == 0.5
    assert boundary_recall(pred, gt, r=1) == 1.0


def test_br_r_positive_known_answer():
    gt = edge_map(10, 12, 5)  # gt boundary columns 4, 5
    pred = edge_map(10, 12, 8)  # pred boundary columns 7, 8
    assert boundary_recall(pred, gt, r=1) == 0.0
    assert boundary_recall(pred, gt, r=2) == 0.5  # column 5 is 2 px from column 7
    assert boundary_recall(pred, gt, r=3) == 1.0


def test_br_window_is_square():
    # gt boundary pixels (0,0), (0,1), (1,0); pred boundary pixels (2,2) and its 4-neighbours.
    # (0,0) is at offset (1, 2) from (1,2) / (2,1): inside the 5x5 window of r=2 (Chebyshev
    # distance 2) although its Euclidean distance sqrt(5) exceeds 2.
    gt = np.zeros((9, 9), np.uint8)
    gt[0, 0] = 1
    pred = np.zeros((9, 9), np.uint8)
    pred[2, 2] = 1
    assert boundary_recall_counts(pred, gt, r=0) == (0, 3)
    assert boundary_recall_counts(pred, gt, r=1) == (2, 3)
    assert boundary_recall_counts(pred, gt, r=2) == (3, 3)


def test_br_ignore_regions_make_no_boundary():
    gt = edge_map(10, 10, 5)
    gt[5:, 5:] = 255  # bottom-right void: bottom rows have a 0|void edge only
    # gt boundary: rows 0-4, columns 4 and 5 (0|1 edge); nothing along the void.
    assert boundary_recall_counts(gt, gt, r=0) == (10, 10)
    flat = np.zeros_like(gt)
    assert boundary_recall(flat, gt, r=3) == 0.0
    assert boundary_recall(edge_map(10, 10, 5), gt, r=0) == 1.0
    # Coarse labels: two classes separated by a void band -> no gt boundary at all.
    coarse = edge_map(10, 10, 5)
    coarse[:, 3:7] = 255
    assert boundary_recall_counts(flat, coarse, r=2) == (0, 0)
    # Without ignore handling, 255 is an ordinary class and does make boundaries.
    assert boundary_recall_counts(coarse, coarse, r=0, ignore_index=None)[1] == 40


def test_br_empty_gt_boundary_is_explicit():
    gt = np.full((8, 8), 3, np.uint8)
    pred = edge_map(8, 8, 4)
    assert boundary_recall_counts(pred, gt) == (0, 0)
    assert boundary_recall(pred, gt) == 1.0  # documented default: nothing to recall
    assert math.isnan(boundary_recall(pred, gt, empty_value=float('nan')))
    all_void = np.full((8, 8), 255, np.uint8)
    assert boundary_recall(pred, all_void) == 1.0


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_br_matches_slow_reference(seed):
    gt, pred = blocky_label_maps(seed)
    for r in (0, 1, 2, 4):
        assert boundary_recall_counts(pred, gt, r=r) == reference_counts(pred, gt, r, 255)


def test_br_default_tolerance_and_inputs():
    assert default_tolerance(360, 480) == 2  # 0.0025 * 600 = 1.5 -> 2 (half away from 0)
    assert default_tolerance(512, 1024) == 3
    assert default_tolerance(1024, 2048) == 6
    gt = edge_map(10, 10, 5)
    assert boundary_recall(gt[None], gt[None]) == 1.0  # (1, H, W) accepted
    with pytest.raises(ValueError, match='shapes differ'):
        boundary_recall(gt, gt[:, :9])
    with pytest.raises(ValueError, match='r must be'):
        boundary_recall(gt, gt, r=-1)


@needs_camvid
def test_br_of_shifted_ground_truth_decreases_with_shift():
    names = ['0016E5_07959.png', '0016E5_08085.png', '0016E5_08157.png']
    ks = list(range(0, 9))
    for name in names:
        gt = cv2.imread(osp.join(CAMVID_ROOT, 'valannot', name), cv2.IMREAD_UNCHANGED)
        assert gt is not None, name
        gt[gt == 11] = 255
        r = default_tolerance(*gt.shape)
        brs = []
        for k in ks:
            # Oracle prediction: ground truth shifted right and down by k px (edge replicated).
            shifted = np.pad(gt, ((k, 0), (k, 0)), mode='edge')[:gt.shape[0], :gt.shape[1]]
            brs.append(boundary_recall(shifted, gt))
        assert brs[0] == 1.0
        # Within the tolerance (|dy|, |dx| <= r) only boundary pixels whose shifted copy fell
        # off the bottom/right image border can be missed.
        assert all(br > 0.99 for br in brs[:r + 1]), brs
        # BR never increases with k, and falls strictly beyond the tolerance.
        assert all(a >= b for a, b in zip(brs, brs[1:])), (name, brs)
        assert all(a > b for a, b in zip(brs[r:], brs[r + 1:])), (name, brs)
        assert brs[-1] < 0.8
