# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SuperpixelBoundaryMetric: beside mmseg's IoUMetric, with hard superpixels, in a config's
evaluator list."""
import numpy as np
import pytest

from mmseg_spixreg.evaluation.functional import asa_counts
from tests.utils import edge_map


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


def test_undefined_metrics_are_left_out_not_nan():
    """All-ignore or boundary-free ground truth gave NaN: the undefined metrics are left out
    (with a warning naming them); the defined ones stay."""
    import math
    evaluator = _evaluator([dict(type='SuperpixelBoundaryMetric', br_tolerance=0)])
    one_class = np.ones((10, 10), np.int64)
    evaluator.process([_sample(one_class, one_class)])
    res = evaluator.evaluate(1)
    assert res['PixAcc'] == 100.0 and 'BR' not in res and 'BR_paper' not in res
    assert all(math.isfinite(v) for v in res.values())
    evaluator = _evaluator([dict(type='SuperpixelBoundaryMetric', br_tolerance=0)])
    ignore = np.full((10, 10), 255, np.int64)
    evaluator.process([_sample(one_class, ignore)])
    res = evaluator.evaluate(1)
    assert not {'PixAcc', 'BR', 'BR_paper'} & set(res)
    assert all(math.isfinite(v) for v in res.values())


def test_float_or_negative_labels_are_errors_naming_the_image():
    import torch
    from mmengine.structures import PixelData
    evaluator = _evaluator([dict(type='SuperpixelBoundaryMetric')])
    gt = edge_map(10, 10, 5)
    sample = _sample(gt, gt)
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.float32)))
    with pytest.raises(
            ValueError, match='synthetic.png must hold integer class ids, got dtype '
            'float32'):
        evaluator.process([sample])
    negative = gt.astype(np.int64)
    negative[0, 0] = -3
    with pytest.raises(ValueError, match=r'synthetic.png has negative labels \[-3\]'):
        evaluator.process([_sample(gt, negative)])
