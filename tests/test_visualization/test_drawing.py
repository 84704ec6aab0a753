# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel drawing (mmseg_spixreg.visualization.drawing): boundaries, label colours, panels."""

import numpy as np
import pytest

from mmseg_spixreg.evaluation import boundary_map
from mmseg_spixreg.visualization import (colorize_labels, draw_superpixel_boundaries,
                                         superpixel_panel)
from tests.utils import PALETTE


def test_drawing_marks_exactly_the_superpixel_boundaries():
    image = np.full((12, 16, 3), 7, np.uint8)
    spix = np.kron(np.arange(6).reshape(2, 3), np.ones((6, 6), np.int64))[:, :16]
    out = draw_superpixel_boundaries(image, spix, color=(255, 0, 0))
    edges = boundary_map(spix)
    assert (out[edges] == (255, 0, 0)).all() and (out[~edges] == 7).all()
    assert (image == 7).all()  # input untouched
    labels = np.array([[0, 1], [2, 255]])
    assert colorize_labels(labels, PALETTE).tolist() == [[[128, 128, 128], [128, 0, 0]],
                                                         [[192, 192, 128], [0, 0, 0]]]
    panel = superpixel_panel(image, spix, np.zeros((12, 16), int), np.ones((12, 16), int), PALETTE)
    assert panel.shape == (12 + 22, 3 * 16, 3)
    assert superpixel_panel(image, None, titles=False).shape == (12, 16, 3)
    with pytest.raises(ValueError, match='sizes differ'):
        draw_superpixel_boundaries(image, spix[:, :8])
