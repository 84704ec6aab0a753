# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SuperpixelBoundaryMetric(protocol='original'): PixAcc_orig, BR_orig, ASA_orig are per-image
values averaged over images (the thesis's own code), unlike the pooled keys."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData
from mmseg.structures import SegDataSample


def _sample(pred, gt, assignments=None):
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None].astype(np.int64)))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.int64)))
    if assignments is not None:
        sample.set_data({
            'pred_assignments':
            BaseDataElement(
                assignments=assignments,
                metainfo=dict(levels=(4, 8), img_shape=gt.shape, flip=False, flip_direction=None))
        })
    sample.set_metainfo(dict(img_path='synthetic.png'))
    return sample


def _evaluate(samples, **kwargs):
    from mmengine.evaluator import Evaluator
    from mmseg.registry import METRICS

    import mmseg_spixreg.evaluation  # noqa: F401  (registers the metric)
    evaluator = Evaluator([METRICS.build(dict(type='SuperpixelBoundaryMetric', **kwargs))])
    evaluator.dataset_meta = dict(classes=('a', 'b'))
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def _two_images():
    # image 1 (4x6): gt cols 0-2 class 0, cols 3-5 class 1; pred shifted right by one column
    gt1 = np.zeros((4, 6), np.int64)
    gt1[:, 3:] = 1
    pred1 = np.zeros((4, 6), np.int64)
    pred1[:, 4:] = 1
    # image 2 (2x2): two columns, predicted exactly
    gt2 = np.array([[0, 1], [0, 1]])
    return [(pred1, gt1), (gt2, gt2)]


def test_original_keys_are_means_over_images():
    res = _evaluate([_sample(p, g) for p, g in _two_images()], br_tolerance=1, protocol='original')
    # PixAcc_orig: image 1 20 of 24 (column 3 wrong), image 2 4 of 4 -> mean of the two
    pix = (20 / (24 + 1e-6) + 4 / (4 + 1e-6)) / 2
    assert res['PixAcc_orig'] == pytest.approx(100 * pix, abs=1e-3)
    assert res['PixAcc'] == pytest.approx(100 * 24 / 28, abs=1e-3)  # pooled: 85.71
    # BR_orig (r = 1): image 1 tp 4, fn 4; image 2: all 4 pixels are boundary, tp 4, fn 0
    br = (4 / (8 + 1e-5) + 4 / (4 + 1e-5)) / 2
    assert res['BR_orig'] == pytest.approx(100 * br, abs=1e-3)  # 75.0; pooled would be 66.7
    # the text's BR and BR_paper recall everything here
    assert res['BR'] == pytest.approx(100.0) and res['BR_paper'] == pytest.approx(100.0)
    assert 'ASA_orig' not in res  # no pred_assignments


def test_br_orig_is_reported_by_default_the_others_not():
    res = _evaluate([_sample(p, g) for p, g in _two_images()], br_tolerance=1)
    assert res['BR_orig'] == pytest.approx(100 * (4 / (8 + 1e-5) + 4 / (4 + 1e-5)) / 2, abs=1e-3)
    assert not {'PixAcc_orig', 'ASA_orig'} & set(res)
    with pytest.raises(ValueError, match='protocol'):
        _evaluate([], protocol='thesis')


def test_asa_orig_from_pred_assignments():
    """16x16, own-seed assignments: ASA (eq. 8) 10/16, ASA_orig 6/16 (see the functional test
    test_asa_orig_resamples_bilinearly); a second image with ASA_orig 1: mean of the two."""
    own = []
    for h in (4, 2):
        a = torch.zeros(1, 9, h, h)
        a[:, 4] = 1.0
        own.append(a)
    gt = np.ones((16, 16), np.int64)
    gt[:, [1, 2, 5, 6, 9, 10]] = 0
    uniform = np.zeros((16, 16), np.int64)
    res = _evaluate([_sample(gt, gt, own), _sample(uniform, uniform, own)], protocol='original')
    assert res['ASA'] == pytest.approx(100 * (160 + 256) / 512, abs=1e-3)  # pooled
    assert res['ASA_orig'] == pytest.approx(100 * (96 / 256 + 1) / 2, abs=1e-3)
