# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SpixSegLocalVisualizer: mmseg's SegLocalVisualizer plus a tile of superpixel boundaries.

``tools/test.py --show-dir`` with it: tests/test_tools/test_train_test.py."""
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_spixreg.visualization import draw_superpixel_boundaries
from tests.utils import PALETTE


def _sample(h=24, w=32):
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.ones(1, h, w, dtype=torch.long))
    pred = torch.zeros(1, h, w, dtype=torch.long)
    pred[:, :, w // 2:] = 2
    sample.pred_sem_seg = PixelData(data=pred)
    sample.pred_superpixels = PixelData(data=torch.arange(h * w).reshape(1, h, w) // 8 % 5)
    return sample


def test_spix_visualizer_adds_the_superpixel_tile_to_mmseg_drawing(tmp_path):
    from mmseg.visualization import SegLocalVisualizer

    from mmseg_spixreg.visualization import SpixSegLocalVisualizer
    image = np.random.RandomState(0).randint(0, 255, (24, 32, 3), np.uint8)
    sample = _sample()
    meta = dict(classes=('a', 'b', 'c'), palette=PALETTE)
    ours = SpixSegLocalVisualizer(name='spix_vis_test', alpha=0.5, **meta)
    assert ours.dataset_meta == meta  # mmseg 1.2.2's constructor swaps classes and palette
    ours.add_datasample('x', image, sample, out_file=str(tmp_path / 'ours.png'))
    drawn = ours.get_image()
    assert drawn.shape == (24, 3 * 32, 3)  # ground truth | prediction | superpixels
    assert np.array_equal(cv2.imread(str(tmp_path / 'ours.png'))[..., ::-1], drawn)
    stock = SegLocalVisualizer(name='stock_vis_test', alpha=0.5)
    stock.dataset_meta = meta
    no_spix = _sample()
    del no_spix.pred_superpixels
    stock.add_datasample('x', image, no_spix, out_file=str(tmp_path / 'stock.png'))
    # (mmseg's get_image() returns its last tile only; its file has both)
    stock_drawn = cv2.imread(str(tmp_path / 'stock.png'))[..., ::-1]
    assert np.array_equal(drawn[:, :64], stock_drawn)  # mmseg's tiles unchanged
    expected = draw_superpixel_boundaries(image, sample.pred_superpixels.data[0].numpy(),
                                          (255, 255, 0))
    assert np.array_equal(drawn[:, 64:], expected)
    # draw_gt=False: prediction | superpixels; samples without superpixels: exactly mmseg's
    ours.add_datasample('x', image, sample, draw_gt=False, out_file=str(tmp_path / 'p.png'))
    assert np.array_equal(ours.get_image(), drawn[:, 32:])
    ours.add_datasample('x', image, no_spix, out_file=str(tmp_path / 'n.png'))
    assert np.array_equal(cv2.imread(str(tmp_path / 'n.png'))[..., ::-1], stock_drawn)
    off = SpixSegLocalVisualizer(name='spix_vis_off', draw_superpixels=False, alpha=0.5, **meta)
    off.add_datasample('x', image, sample, out_file=str(tmp_path / 'off.png'))
    assert np.array_equal(cv2.imread(str(tmp_path / 'off.png'))[..., ::-1], stock_drawn)
    # without out_file the drawing goes to the vis backends, as mmseg's
    saving = SpixSegLocalVisualizer(
        name='spix_vis_save',
        save_dir=str(tmp_path / 'save'),
        vis_backends=[dict(type='LocalVisBackend')],
        **meta)
    saving.add_datasample('val_img', image, sample, step=3)
    written = [f for _, _, fs in os.walk(tmp_path / 'save') for f in fs if f.endswith('.png')]
    assert written == ['val_img_3.png']
    with pytest.raises(ValueError, match='superpixel_color must be three ints'):
        SpixSegLocalVisualizer(name='spix_vis_bad', superpixel_color=(255, 0))
    with pytest.raises(ValueError, match='pred_superpixels are 24x32 but the image'):
        ours.add_datasample('x', image[:20], sample, out_file=str(tmp_path / 'bad.png'))


def test_spix_visualizer_needs_the_data_sets_classes():
    """No Cityscapes default (mmseg's): without classes / palette drawing a segmentation is an
    error naming the fix; the runner / MMSegInferencer / the caller set dataset_meta."""
    from mmseg_spixreg.visualization import SpixSegLocalVisualizer
    image = np.zeros((24, 32, 3), np.uint8)
    bare = SpixSegLocalVisualizer(name='spix_vis_bare')
    assert bare.dataset_meta == {}
    no_spix = _sample()
    del no_spix.pred_superpixels
    for sample in (_sample(), no_spix):
        with pytest.raises(
                ValueError,
                match=r"no class names / palette to draw gt_sem_seg.*"
                r"model.dataset_meta\['classes'\]"):
            bare.add_datasample('x', image, sample, draw_gt=True)
    bare.dataset_meta = dict(classes=('a', 'b', 'c'), palette=PALETTE)  # what the runner does
    bare.add_datasample('x', image, _sample(), draw_gt=False)
    assert bare.get_image().shape == (24, 2 * 32, 3)
    # a named data set still resolves through mmseg
    assert len(
        SpixSegLocalVisualizer(name='spix_vis_ade',
                               dataset_name='ade20k').dataset_meta['classes']) == 150
