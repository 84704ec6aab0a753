# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""CoarsenLabels and its two generators: square (original) vs round (paper) erosion on a
hand-made map, the pipeline step after a random crop, and the shared converter."""
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

import mmseg_spixreg.datasets  # noqa: F401  (registers the transforms)
from mmseg_spixreg.datasets.transforms.coarsen_labels import (coarse_labels_original,
                                                              coarse_labels_paper, coarsen_labels)


def _corner_map():
    """7x7 of class 1 with a class-0 pixel at (0, 0)."""
    fine = np.ones((7, 7), np.uint8)
    fine[0, 0] = 0
    return fine


def test_square_erosion_removes_diagonal_neighbours():
    fine = _corner_map()
    # N = 1, original: a class-1 pixel survives if its whole 3x3 window is class 1 (the border
    # does not erode): (0, 1), (1, 0), (1, 1) go -> 48 - 3 = 45 pixels; class 0 (1 pixel)
    # vanishes
    orig = coarse_labels_original(fine, erode=1)
    expected = np.ones((7, 7), np.uint8)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = 255
    np.testing.assert_array_equal(orig, expected)
    # paper: Euclidean distance > 1 to the other class: (1, 1) is sqrt(2) away and stays -> 46
    paper = coarse_labels_paper(fine, erode=1, epsilon=0)
    expected[1, 1] = 1
    np.testing.assert_array_equal(paper, expected)


def test_later_class_overwrites_and_void_is_no_class():
    # N = 0, original, a 100x100 class-1 map with a one-pixel notch at (0, 50): class 1's contour
    # (perimeter ~396 px, Douglas-Peucker epsilon 0.005 x 396 = 1.98 px) loses the 1-px dip,
    # so its polygon covers the notch. Classes are drawn in increasing id, later ones on top:
    for notch, expected in ((0, 1), (2, 2)):
        fine = np.ones((100, 100), np.uint8)
        fine[0, 50] = notch
        out = coarse_labels_original(fine, erode=0)
        # notch 0: drawn first, overwritten by class 1; notch 2: drawn after class 1, kept
        assert out[0, 50] == expected
        assert (out[fine != notch] == 1).all()
    # holes (RETR_TREE) are not filled: a 3x3 class-1 frame around a class-2 pixel
    fine = np.ones((3, 3), np.uint8)
    fine[1, 1] = 2
    np.testing.assert_array_equal(coarse_labels_original(fine, erode=0), fine)
    # void (255) gets no polygon of its own
    fine = np.full((4, 4), 255, np.uint8)
    fine[:, :2] = 3
    np.testing.assert_array_equal(coarse_labels_original(fine, erode=0), fine)
    with pytest.raises(ValueError, match='epsilon'):
        coarsen_labels(fine, 'original', erode=1, epsilon=1.0)


def test_transform_after_random_crop():
    rng = np.random.RandomState(0)
    fine = np.kron(rng.randint(0, 3, (4, 4)), np.ones((16, 16), np.int64)).astype(np.uint8)
    # a second seg field carries the fine labels through the same crop
    results = dict(
        img=np.zeros((64, 64, 3), np.uint8),
        gt_seg_map=fine.copy(),
        gt_fine=fine.copy(),
        seg_fields=['gt_seg_map', 'gt_fine'],
        img_shape=(64, 64))
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(40, 48)))
    coarsen = TRANSFORMS.build(dict(type='CoarsenLabels', protocol='original', erode=3))
    results = coarsen(crop(results))
    assert results['gt_seg_map'].shape == (40, 48)
    # coarsened after the crop: the crop's border does not erode
    np.testing.assert_array_equal(results['gt_seg_map'],
                                  coarse_labels_original(results['gt_fine'], erode=3))
    labelled = results['gt_seg_map'] != 255
    assert labelled.any() and (~labelled).any()
    assert repr(coarsen).startswith("CoarsenLabels(protocol='original', erode=3")
    paper = TRANSFORMS.build(dict(type='CoarsenLabels', erode=3))
    np.testing.assert_array_equal(
        paper(dict(gt_seg_map=fine.copy()))['gt_seg_map'], coarse_labels_paper(fine, erode=3))
    with pytest.raises(ValueError, match='protocol'):
        TRANSFORMS.build(dict(type='CoarsenLabels', protocol='thesis'))
    with pytest.raises(ValueError, match='gt_seg_map'):
        coarsen(dict(img_path='x.png'))
