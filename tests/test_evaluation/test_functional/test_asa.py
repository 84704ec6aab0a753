# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Achievable segmentation accuracy of hard superpixels (mmseg_spixreg.evaluation.functional.asa):
known answers, void pixels, dense and sparse contingency tables."""
import math

import numpy as np
import pytest

from mmseg_spixreg.evaluation import achievable_segmentation_accuracy
from mmseg_spixreg.evaluation.functional import asa_counts
from tests.utils import edge_map


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
