# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel drawing (mmseg_spixreg.visualization.drawing): boundaries, label colours, panels."""

import numpy as np
import pytest

from mmseg_spixreg.evaluation import boundary_map
from mmseg_spixreg.visualization import (colorize_labels, draw_superpixel_boundaries,
                                         superpixel_panel, thin_boundary_map)
from tests.utils import PALETTE


def test_drawing_marks_exactly_the_superpixel_boundaries():
    image = np.full((12, 16, 3), 10, np.uint8)
    spix = np.kron(np.arange(6).reshape(2, 3), np.ones((6, 6), np.int64))[:, :16]
    out = draw_superpixel_boundaries(image, spix, color=(255, 0, 0))
    edges = thin_boundary_map(spix)
    # one pixel wide (the last column / row of each cell), on the image darkened to 0.6
    assert edges.sum() == 12 * 2 + 16 - 2 and (edges <= boundary_map(spix)).all()
    assert edges[:,
                 5].all() and not edges[:5, 6].any() and edges[5].all() and not edges[6, :5].any()
    assert (out[edges] == (255, 0, 0)).all() and (out[~edges] == 6).all()
    assert (image == 10).all()  # input untouched
    assert (draw_superpixel_boundaries(image, spix, dim=1.0)[~edges] == 10).all()
    with pytest.raises(ValueError, match='dim must be in'):
        draw_superpixel_boundaries(image, spix, dim=0)
    labels = np.array([[0, 1], [2, 255]])
    assert colorize_labels(labels, PALETTE).tolist() == [[[128, 128, 128], [128, 0, 0]],
                                                         [[192, 192, 128], [0, 0, 0]]]
    panel = superpixel_panel(image, spix, np.zeros((12, 16), int), np.ones((12, 16), int), PALETTE)
    assert panel.shape == (12 + 22, 3 * 16, 3)
    assert superpixel_panel(image, None, titles=False).shape == (12, 16, 3)
    with pytest.raises(ValueError, match='sizes differ'):
        draw_superpixel_boundaries(image, spix[:, :8])
