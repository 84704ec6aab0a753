# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel drawing, the SuperpixelVisualizationHook and tools/visualize_superpixels.py."""
import os
import os.path as osp
import types

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT, run_tool
from mmseg_spixreg.evaluation import boundary_map
from mmseg_spixreg.visualization import (SuperpixelVisualizationHook, colorize_labels,
                                         draw_superpixel_boundaries, superpixel_panel)

PALETTE = [[128, 128, 128], [128, 0, 0], [192, 192, 128]]


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


def test_tool_draws_hcfcn_superpixels_on_camvid(tmp_path, camvid_root):
    """tools/visualize_superpixels.py on one real CamVid image with an HCFCN-16 model."""
    cfg = tmp_path / 'hcfcn_camvid.py'
    base = osp.join(REPO_ROOT, 'configs', '_base_')
    cfg.write_text(f"_base_ = ['{base}/models/hcfcn16_r34.py', '{base}/datasets/camvid.py',\n"
                   f"          '{base}/default_runtime.py']\n"
                   'model = dict(backbone=dict(init_cfg=None), decode_head=dict(num_classes=11))\n'
                   f"val_dataloader = dict(dataset=dict(data_root='{camvid_root}'))\n")
    out_dir = tmp_path / 'vis'
    proc = run_tool([
        'tools/visualize_superpixels.py',
        str(cfg), '--indices', '0', '--device', 'cpu', '--out-dir',
        str(out_dir)
    ],
                    timeout=300)
    pngs = sorted(os.listdir(out_dir))
    assert len(pngs) == 1 and pngs[0].endswith('_superpixels.png'), pngs
    panel = cv2.imread(str(out_dir / pngs[0]))
    assert panel.shape == (360 + 22, 3 * 480, 3)
    # The model's hard superpixels were drawn: several of them, and their count is reported.
    line = [ln for ln in proc.stdout.splitlines() if pngs[0] in ln][0]
    n_spix = int(line.split(': ')[1].split(' superpixels')[0])
    assert n_spix > 50, line
    assert 'SpixASA' in line and 'BR' in line


# --- SpixSegLocalVisualizer: mmseg's visualizer + the superpixel tile ----------------------------


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


def test_test_tool_show_dir_draws_superpixels(tmp_path, synthetic_root):
    """tools/test.py --show-dir with the config's visualizer (SegVisualizationHook)."""
    from mmseg_spixreg.utils.synthetic_data import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
    from test_inference import save_random_checkpoint
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'hcfcn_r34_synthetic_coarse.py')
    ckpt = str(tmp_path / 'random.pth')
    save_random_checkpoint(config, ckpt, dict(classes=SYNTHETIC_CLASSES, palette=SYNTHETIC_PALETTE))
    show_dir = tmp_path / 'show'
    # (mmseg's SegVisualizationHook reads runner.iter, which makes mmengine build the train
    # dataloader even in tools/test.py: the train split must exist too)
    run_tool([
        'tools/test.py', config, ckpt, '--work-dir',
        str(tmp_path / 'work'), '--show-dir',
        str(show_dir), '--cfg-options', f'test_dataloader.dataset.data_root={synthetic_root}',
        f'train_dataloader.dataset.data_root={synthetic_root}',
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'default_hooks.visualization.interval=1'
    ],
             timeout=300)
    pngs = sorted(
        osp.join(d, f) for d, _, fs in os.walk(show_dir) for f in fs if f.endswith('.png'))
    assert len(pngs) == 4, pngs  # the 4 val images of the generated set
    for path in pngs:
        drawn = cv2.imread(path)
        assert drawn.shape == (64, 3 * 64, 3), path  # ground truth | prediction | superpixels
        boundary = (drawn[:, 128:] == (0, 255, 255)).all(axis=2)  # yellow (BGR)
        assert 0.02 < boundary.mean() < 0.6, path
