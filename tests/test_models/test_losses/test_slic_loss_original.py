# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SLICLoss(protocol='original'): L_SLIC on the stride-4 grid as the thesis's own code computes
it, on a hand-made image where the rule changes the value."""
import math

import pytest
import torch

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.losses import SLICLoss

pytestmark = pytest.mark.usefixtures('single_thread')


def _own_seed(batch=1):
    """[A4 (B, 9, 4, 4), A8 (B, 9, 2, 2)] giving every cell fully to its own seed: one
    superpixel over a 16x16 image, q(x) = the mean of x over the grid."""
    out = []
    for h in (4, 2):
        a = torch.zeros(batch, 9, h, h)
        a[:, 4] = 1.0
        out.append(a)
    return out


def _stripes():
    """16x16 RGB in [0, 255]: white on columns 1, 2, 5, 6, 9, 10, 13, 14, black elsewhere."""
    img = torch.zeros(1, 3, 16, 16)
    img[..., [1, 2, 5, 6, 9, 10, 13, 14]] = 255.0
    return img


def test_original_l_slic_is_evaluated_on_the_stride4_grid():
    img, assign = _stripes(), _own_seed()
    # eq. 4 (full resolution): q = mean L = 50 (half the columns white, L = 100), every pixel
    # 50 Lab units away
    paper = SLICLoss(m=0.0)(img, assign, (4, 4))
    assert paper.item() == pytest.approx(50.0, abs=1e-3)
    # original: the bilinear 16 -> 4 resize samples columns (1, 2), (5, 6), ... of each cell:
    # a white grid, q = white, error 0
    original = SLICLoss(m=0.0, protocol='original')(img, assign, (4, 4))
    assert original.item() == pytest.approx(0.0, abs=1e-3)


def test_original_position_term_in_grid_units_over_stride_squared():
    img, assign = _stripes(), _own_seed()
    # original: positions of the 4x4 grid, q(P) = (1.5, 1.5), mean distance over the 16 cells,
    # divided by the largest stride 8 squared
    offsets = (-1.5, -0.5, 0.5, 1.5)
    grid = sum(math.hypot(dx, dy) for dx in offsets for dy in offsets) / 16  # 1.49768
    original = SLICLoss(m=1.0, protocol='original')(img, assign, (4, 4))
    assert original.item() == pytest.approx(grid / 64, abs=1e-4)  # 0.0234
    # eq. 4: pixel positions, q(P) = (7.5, 7.5), mean over the 256 pixels, not scaled
    offsets = [i - 7.5 for i in range(16)]
    pixels = sum(math.hypot(dx, dy) for dx in offsets for dy in offsets) / 256  # 6.12
    paper = SLICLoss(m=1.0)(img, assign, (4, 4))
    assert paper.item() == pytest.approx(50.0 + pixels, abs=1e-3)
    # lambda scales it as usual
    half = SLICLoss(loss_weight=0.5, m=1.0, protocol='original')(img, assign, (4, 4))
    assert half.item() == pytest.approx(0.5 * grid / 64, abs=1e-4)


def test_original_gradient_and_arguments():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 32, 48) * 255
    logits = [torch.randn(2, 9, 8, 12, requires_grad=True),
              torch.randn(2, 9, 4, 6, requires_grad=True)]  # yapf: disable
    loss = SLICLoss(m=0.5, protocol='original')(img, [lg.softmax(1) for lg in logits], (8, 12))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(lg.grad).all() for lg in logits)
    with pytest.raises(ValueError, match='protocol'):
        SLICLoss(m=0.0, protocol='thesis')
