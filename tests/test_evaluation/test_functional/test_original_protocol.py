# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""BR_orig, ASA_orig and PixAcc_orig (the thesis's own code) on small hand-made maps: each rule
changes the result, the expected numbers are counted by hand in the comments."""
import numpy as np
import pytest
import torch

from mmseg_spixreg.evaluation.functional import (asa_from_assignments, asa_original, boundary_map,
                                                 boundary_recall, boundary_recall_original,
                                                 original_boundary_band, original_tolerance,
                                                 pixel_accuracy_original)


def _cells(mask):
    return sorted(zip(*np.nonzero(mask)))


def test_boundary_is_8_connected():
    """A pixel that touches the other class only diagonally is a boundary pixel (N_1)."""
    labels = np.zeros((3, 3), np.int64)
    labels[2, 2] = 1
    # class-0 pixels with the 1 in their 3x3 window: (1,1), (1,2), (2,1); the 1 itself
    assert _cells(original_boundary_band(labels, 1)) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    # the 4-connected boundary of the other BR keys lacks the diagonal (1, 1)
    assert _cells(boundary_map(labels)) == [(1, 2), (2, 1), (2, 2)]


def test_hood_width():
    """N_k grows with the window half-width k; N_0 is empty (the window is the pixel)."""
    labels = np.zeros((5, 5), np.int64)
    labels[4, 4] = 1
    assert len(_cells(original_boundary_band(labels, 0))) == 0
    assert _cells(original_boundary_band(labels, 1)) == [(r, c) for r in (3, 4) for c in (3, 4)]
    # Chebyshev distance <= 2 from (4, 4): rows 2..4 x cols 2..4, clipped at the border
    assert _cells(original_boundary_band(labels,
                                         2)) == [(r, c) for r in (2, 3, 4) for c in (2, 3, 4)]


def test_void_removes_its_neighbourhood_and_is_no_class():
    labels = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [255, 255, 255, 255]])  # yapf: disable
    # without the void rule N_1 would be (0,1), (0,2), (1,1), (1,2); row 1 touches void
    assert _cells(original_boundary_band(labels, 1)) == [(0, 1), (0, 2)]
    # a prediction has no void: 255 is an ordinary class there; (0, 1), (0, 2) and the whole
    # rows 1 and 2 (each pixel has a third class in its window): 2 + 4 + 4
    assert len(_cells(original_boundary_band(labels, 1, ignore_index=None))) == 10
    # void next to one class only: no boundary at all (void is not "another class")
    assert not original_boundary_band(np.array([[0, 0, 0], [255, 255, 255]]), 1).any()


def test_br_orig_counts_a_shifted_prediction():
    """gt: cols 0-2 class 0, cols 3-5 class 1; pred shifted right by one column (4x6)."""
    gt = np.zeros((4, 6), np.int64)
    gt[:, 3:] = 1
    pred = np.zeros((4, 6), np.int64)
    pred[:, 4:] = 1
    # r = 1: b0(gt) = N_1(gt) = cols 2, 3; b0(pred) = N_1(pred) = cols 3, 4
    # tp = |b0(pred) & N_1(gt)| = col 3 = 4; fn = |b0(gt) & ~N_1(pred)| = col 2 = 4
    assert boundary_recall_original(pred, gt, r=1) == pytest.approx(4 / (8 + 1e-5), abs=1e-9)
    # r = 2: N_2(gt) = cols 1..4, N_2(pred) = cols 2..5 -> tp = 8 (cols 3, 4), fn = 0
    assert boundary_recall_original(pred, gt, r=2) == pytest.approx(8 / (8 + 1e-5), abs=1e-9)
    # the same pair scores 1 by Stutz's BR and by eq. 7 at r = 1
    assert boundary_recall(pred, gt, r=1) == 1.0
    assert boundary_recall(pred, gt, r=1, mode='paper') == 1.0
    # a perfect prediction with the hood N_0 (empty): tp = 0, fn = 8 -> 0
    assert boundary_recall_original(gt, gt, r=0) == 0.0


def test_original_tolerance_rounds_half_to_even():
    assert original_tolerance(360, 480) == 2  # 0.0025 * 600 = 1.5 -> 2
    assert original_tolerance(120, 160) == 0  # 0.0025 * 200 = 0.5 -> 0 (Python's round)
    assert original_tolerance(512, 1024) == 3  # 2.86


def test_pixel_accuracy_original_eps_and_void():
    gt = np.array([[0, 1, 255, 255]])
    pred = np.array([[0, 0, 1, 1]])
    assert pixel_accuracy_original(pred, gt) == pytest.approx(1 / (2 + 1e-6))
    # no labelled pixel: 0 (not NaN; it still counts in the mean over images)
    assert pixel_accuracy_original(pred, np.full((1, 4), 255)) == 0.0


def _own_seed_assignments(h4, w4):
    """[A4, A8] that give every pixel fully to its own seed (channel 4, dy = dx = 0)."""
    out = []
    for h, w in ((h4, w4), (h4 // 2, w4 // 2)):
        a = torch.zeros(1, 9, h, w, dtype=torch.float64)
        a[:, 4] = 1.0
        out.append(a)
    return out


def test_asa_orig_resamples_bilinearly():
    """16x16 image, one superpixel (own-seed A4, A8: q is the mean over the whole grid).

    Class 0 on columns 1, 2, 5, 6, 9, 10 (6 of 16), class 1 elsewhere (10 of 16).
    * eq. 8 (4x4 cell means): class 0 has 6/16 of the mass -> everything class 1: 10/16.
    * original: the bilinear 16 -> 4 resize samples the centre 2x2 of each cell, columns
      (1, 2), (5, 6), (9, 10), (13, 14): three grid columns of class 0, one of class 1 ->
      everything class 0: 6/16.
    """
    gt = np.ones((16, 16), np.int64)
    gt[:, [1, 2, 5, 6, 9, 10]] = 0
    assign = _own_seed_assignments(4, 4)
    assert asa_from_assignments(gt, assign, 2) == pytest.approx(10 / 16)
    assert asa_original(gt, assign, 2) == pytest.approx(96 / (256 + 1e-6), abs=1e-12)
    # void pixels (column 15) are zero vectors and do not count: 96 of 240
    gt_void = gt.copy()
    gt_void[:, 15] = 255
    assert asa_original(gt_void, assign, 2) == pytest.approx(96 / (240 + 1e-6), abs=1e-12)
    with pytest.raises(ValueError, match='stride-4 grid'):
        asa_original(gt, _own_seed_assignments(8, 8), 2)


def test_one_hot_grid_is_the_bilinear_resize():
    """The 2x2-sample counts equal F.interpolate(bilinear, align_corners=False) of the
    zero-padded one-hot map (void = zero vector), here on a 37x45 map (padded to 48x48)."""
    import torch.nn.functional as F

    from mmseg_spixreg.evaluation.functional import one_hot_bilinear_to_grid
    rng = np.random.RandomState(0)
    gt = torch.from_numpy(rng.randint(0, 4, (37, 45)))
    gt[rng.rand(37, 45) < 0.2] = 255
    one_hot = F.one_hot(gt.clamp(0, 3), 4).double() * (gt != 255)[..., None]
    one_hot = F.pad(one_hot.permute(2, 0, 1)[None], (0, 3, 0, 11))
    ref = F.interpolate(one_hot, size=(12, 12), mode='bilinear', align_corners=False)
    torch.testing.assert_close(one_hot_bilinear_to_grid(gt, 4, (12, 12)).double(), ref)


@pytest.mark.parametrize('stride', [4, 8])
def test_one_hot_grid_is_the_bilinear_resize_at_any_even_stride(stride):
    """The same equality at the stride of the finest learned level (8 for levels (8, ))."""
    import torch.nn.functional as F

    from mmseg_spixreg.evaluation.functional import one_hot_bilinear_to_grid
    rng = np.random.RandomState(1)
    gt = torch.from_numpy(rng.randint(0, 3, (37, 45)))
    gt[rng.rand(37, 45) < 0.2] = 255
    grid = (-(-37 // 16) * 16 // stride, -(-45 // 16) * 16 // stride)
    one_hot = F.one_hot(gt.clamp(0, 2), 3).double() * (gt != 255)[..., None]
    one_hot = F.pad(
        one_hot.permute(2, 0, 1)[None], (0, stride * grid[1] - 45, 0, stride * grid[0] - 37))
    ref = F.interpolate(one_hot, size=grid, mode='bilinear', align_corners=False)
    torch.testing.assert_close(one_hot_bilinear_to_grid(gt, 3, grid, stride=stride).double(), ref)


@pytest.mark.parametrize('levels', [(4, ), (8, ), (4, 8), (2, 4, 8)])
@pytest.mark.parametrize('size', [(64, 48), (37, 45)])
def test_asa_of_own_seed_assignments_is_the_block_majority(levels, size):
    """With every pixel fully on its own seed at each learned level, q(y, A) is the mean over
    the blocks of the coarsest grid (2 * levels[-1] pixels): eq. 8 is then the hard-superpixel
    ASA of those blocks (an independent count), for any levels the neck accepts; gt in the
    top-left of the padded grid."""
    from mmseg_spixreg.evaluation import achievable_segmentation_accuracy
    from mmseg_spixreg.evaluation.functional import asa_from_assignments, assignment_grid
    H, W = size
    rng = np.random.RandomState(sum(levels) + H)
    gt = rng.randint(0, 3, (H, W))
    gt[rng.rand(H, W) < 0.1] = 255
    h, w = assignment_grid(H, W, levels)
    assign = []
    for i in range(len(levels)):
        a = torch.zeros(1, 9, h // 2**i, w // 2**i, dtype=torch.float64)
        a[:, 4] = 1.0
        assign.append(a)
    top = 2 * levels[-1]
    rows, cols = np.mgrid[:H, :W]
    blocks = (rows // top) * W + cols // top
    expected = achievable_segmentation_accuracy(blocks, gt)
    assert asa_from_assignments(gt, assign, 3, levels=levels) == pytest.approx(expected)
    # ASA_orig runs on the same geometry (its own resampling: only its range is checked here)
    assert 0 < asa_original(gt, assign, 3, levels=levels) <= 1
    with pytest.raises(ValueError, match=f'stride-{levels[0]} grid'):
        asa_from_assignments(gt, [a[..., :-1, :] for a in assign], 3, levels=levels)
