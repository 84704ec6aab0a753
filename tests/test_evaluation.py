# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Boundary recall, ASA and the registered SuperpixelBoundaryMetric."""
import math
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_spixreg.evaluation import (achievable_segmentation_accuracy, boundary_map,
                                      boundary_recall, boundary_recall_counts, default_tolerance)
from mmseg_spixreg.evaluation.functional import asa_counts

CAMVID = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '..', 'shared', 'data', 'camvid')
needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID, 'valannot')),
    reason=f'real CamVid data not found at {osp.normpath(CAMVID)}')


def edge_map(h, w, col):
    """Two classes: 0 left of column ``col``, 1 from ``col`` on."""
    label = np.zeros((h, w), np.uint8)
    label[:, col:] = 1
    return label


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
    rng = np.random.RandomState(seed)
    # Blocky random maps (so boundaries are neither everywhere nor nowhere) with void blocks.
    gt = np.kron(rng.randint(0, 4, (6, 7)), np.ones((3, 3), int))[:17, :19]
    gt[rng.rand(*gt.shape) < 0.1] = 255
    pred = np.kron(rng.randint(0, 3, (9, 10)), np.ones((2, 2), int))[:17, :19]
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
        gt = cv2.imread(osp.join(CAMVID, 'valannot', name), cv2.IMREAD_UNCHANGED)
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


# --------------------------------------------------------------------------- ASA
def test_asa_one_superpixel_per_class_is_one():
    gt = edge_map(6, 8, 3)
    gt[4:, :] = 2
    assert achievable_segmentation_accuracy(gt.astype(np.int64), gt) == 1.0
    # Any refinement of the classes (superpixels never crossing a class edge) is also exact.
    fine = np.arange(48).reshape(6, 8)
    assert achievable_segmentation_accuracy(fine, gt) == 1.0


def test_asa_known_mixed_case():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], np.uint8)
    sp = np.array([[0, 0, 0, 1], [0, 0, 0, 1]], np.int64)
    # superpixel 0: four pixels of class 0, two of class 1 -> 4; superpixel 1: two of class 1.
    assert asa_counts(sp, gt) == (6, 8)
    assert achievable_segmentation_accuracy(sp, gt) == 0.75
    # One superpixel over everything: the majority class fraction.
    gt2 = np.array([[0, 0, 0, 1, 2, 2]], np.uint8)
    assert achievable_segmentation_accuracy(np.zeros((1, 6), int), gt2) == 0.5


def test_asa_ignores_void_and_handles_empty():
    gt = np.array([[0, 0, 255, 1], [0, 1, 255, 1]], np.uint8)
    sp = np.array([[0, 0, 0, 1], [0, 0, 1, 1]], np.int64)
    # Labelled: 6 px. sp0 = {0,0,0,1} (void excluded) -> 3; sp1 = {1,1} -> 2.
    assert asa_counts(sp, gt) == (5, 6)
    assert math.isnan(achievable_segmentation_accuracy(sp, np.full_like(gt, 255)))


def test_asa_dense_and_sparse_tables_agree():
    rng = np.random.RandomState(0)
    gt = rng.randint(0, 19, (64, 96)).astype(np.uint8)
    gt[rng.rand(64, 96) < 0.2] = 255
    sp = np.kron(rng.randint(0, 50, (16, 24)), np.ones((4, 4), np.int64))
    dense = asa_counts(sp, gt)
    # Same partition with huge, sparse ids -> the np.unique path.
    sparse = asa_counts(sp * 1_000_003 + 17, gt)
    assert dense == sparse
    # Reference: explicit per-superpixel majority.
    keep = gt != 255
    best = sum(np.bincount(gt[keep][sp[keep] == s]).max() for s in np.unique(sp[keep]))
    assert dense == (best, int(keep.sum()))
    with pytest.raises(ValueError, match='shapes differ'):
        asa_counts(sp[:, :5], gt)
    with pytest.raises(TypeError):
        asa_counts(sp.astype(np.float32), gt)


# --------------------------------------------------------------------------- metric
def _sample(pred, gt, spix=None):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None].astype(np.int64)))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.int64)))
    if spix is not None:
        sample.pred_superpixels = PixelData(data=torch.from_numpy(spix[None].astype(np.int64)))
    sample.set_metainfo(dict(img_path='synthetic.png'))
    return sample


def _evaluator(metric_cfgs):
    from mmengine.evaluator import Evaluator
    from mmseg.registry import METRICS

    import mmseg_spixreg.evaluation  # noqa: F401  (registers the metric)
    evaluator = Evaluator([METRICS.build(cfg) for cfg in metric_cfgs])
    evaluator.dataset_meta = dict(classes=('a', 'b', 'c'))
    return evaluator


def test_metric_beside_iou_metric_without_superpixels():
    """Stock segmentors (no pred_superpixels): PixAcc and BR only, next to IoUMetric."""
    evaluator = _evaluator([
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='SuperpixelBoundaryMetric', br_tolerance=0)
    ])
    gt1 = edge_map(10, 10, 5)
    gt1[:, 3:5] = 255
    pred1 = edge_map(10, 10, 6)
    gt2 = edge_map(10, 10, 4) * 2
    evaluator.process([_sample(pred1, gt1), _sample(gt2, gt2)])
    res = evaluator.evaluate(2)
    assert {'aAcc', 'mIoU', 'mAcc', 'PixAcc', 'BR', 'BR_paper'} <= set(res)
    assert not {'ASA', 'ClsErr', 'SpixASA', 'SpixBR'} & set(res)
    # Pooled counts: pixel acc (70 + 100) / (80 + 100); BR: image 1 has no gt boundary
    # (0|1 edge is void), image 2 recalls 20 of 20.
    assert res['PixAcc'] == pytest.approx(100 * 170 / 180, abs=1e-3)
    assert res['PixAcc'] == pytest.approx(res['aAcc'], abs=0.01)
    assert res['BR'] == pytest.approx(100.0)


def test_metric_with_hard_superpixels_reports_spix_asa():
    evaluator = _evaluator([dict(type='SuperpixelBoundaryMetric')])
    rng = np.random.RandomState(1)
    samples, best, labelled, correct = [], 0, 0, 0
    for _ in range(3):
        gt = np.kron(rng.randint(0, 3, (5, 6)), np.ones((8, 8), np.int64))
        gt[rng.rand(*gt.shape) < 0.05] = 255
        pred = np.where(rng.rand(*gt.shape) < 0.8, gt, 1)
        spix = np.kron(np.arange(80).reshape(8, 10), np.ones((5, 5), np.int64))[:40, :48]
        samples.append(_sample(pred, gt, spix))
        b, n = asa_counts(spix, gt)
        best, labelled = best + b, labelled + n
        correct += int(((pred == gt) & (gt != 255)).sum())
    evaluator.process(samples)
    res = evaluator.evaluate(3)
    # hard superpixels only (no pred_assignments): SpixASA, no eq. 8 ASA / ClsErr
    assert res['SpixASA'] == pytest.approx(100 * best / labelled, abs=1e-3)
    assert not {'ASA', 'ClsErr'} & set(res)
    assert 0 < res['SpixBR'] <= 100


def test_metric_in_config_evaluator_list():
    """The documented config form builds through mmengine's Evaluator."""
    import mmseg.evaluation  # noqa: F401  (registers IoUMetric)
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope

    import mmseg_spixreg.evaluation  # noqa: F401
    init_default_scope('mmseg')
    evaluator = Evaluator([dict(type='IoUMetric'), dict(type='SuperpixelBoundaryMetric')])
    assert [type(m).__name__
            for m in evaluator.metrics] == ['IoUMetric', 'SuperpixelBoundaryMetric']


def test_metric_skips_samples_without_ground_truth():
    evaluator = _evaluator([dict(type='SuperpixelBoundaryMetric')])
    sample = _sample(np.zeros((4, 4), int), np.zeros((4, 4), int))
    del sample.gt_sem_seg
    evaluator.process([sample])
    assert evaluator.evaluate(1) == {}
