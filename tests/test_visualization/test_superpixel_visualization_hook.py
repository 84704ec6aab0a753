# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SuperpixelVisualizationHook: panels of validation / test samples to the visualizer."""
import os
import os.path as osp
import types

import cv2
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_spixreg.visualization import SuperpixelVisualizationHook
from tests.utils import PALETTE


def test_hook_sends_panels_to_the_visualizer(tmp_path):
    from mmengine.visualization import Visualizer
    img_path = str(tmp_path / 'img.png')
    cv2.imwrite(img_path, np.random.RandomState(0).randint(0, 255, (24, 32, 3), np.uint8))
    vis = Visualizer(
        name='spix_hook_test',
        save_dir=str(tmp_path / 'vis'),
        vis_backends=[dict(type='LocalVisBackend')])
    vis.dataset_meta = dict(classes=('a', 'b', 'c'), palette=PALETTE)
    runner = types.SimpleNamespace(visualizer=vis, iter=5)
    sample = SegDataSample(metainfo=dict(img_path=img_path))
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, 24, 32, dtype=torch.long))
    sample.gt_sem_seg = PixelData(data=torch.ones(1, 24, 32, dtype=torch.long))
    sample.pred_superpixels = PixelData(data=torch.arange(24 * 32).reshape(1, 24, 32) // 8)
    hook = SuperpixelVisualizationHook(interval=2, max_per_split=1, out_dir=str(tmp_path / 'png'))
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0, {}, [sample])  # batch 0: not an interval multiple of 2
    hook.after_val_iter(runner, 1, {}, [sample])  # drawn
    hook.after_val_iter(runner, 3, {}, [sample])  # max_per_split reached
    written = [f for _, _, fs in os.walk(tmp_path / 'vis') for f in fs if f.endswith('.png')]
    assert written == ['val_superpixels_img_5.png']
    panel = cv2.imread(str(tmp_path / 'png' / 'val_superpixels_img.png'))
    assert panel.shape == (24 + 22, 3 * 32, 3)
    # A stock segmentor's sample (no superpixels) is drawn without them, no error.
    del sample.pred_superpixels
    hook.before_test_epoch(runner)
    hook.after_test_iter(runner, 1, {}, [sample])
    assert osp.exists(tmp_path / 'png' / 'test_superpixels_img.png')
