# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/train.py, tools/test.py and --resume with a stock mmseg config on generated data;
tools/test.py --show-dir with the superpixel visualizer."""
import glob
import json
import os
import os.path as osp
import textwrap

import cv2
import torch

from tests.utils import REPO_ROOT, run_tool, save_random_checkpoint

# A stock mmseg model config (FCN, ResNetV1c) made small for the CPU; BN instead of the
# config's SyncBN, which needs a distributed GPU run.
STOCK_FCN_CFG = """
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmseg_spixreg'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    # no dropout: the uninterrupted-vs-resumed comparison below needs a model without RNG use
    decode_head=dict(in_channels=512, channels=32, num_classes=5, norm_cfg=norm_cfg,
                     dropout_ratio=0),
    auxiliary_head=dict(in_channels=256, channels=16, num_classes=5, norm_cfg=norm_cfg,
                        dropout_ratio=0))
metainfo = dict(classes=('sky', 'grass', 'road', 'wall', 'water'),
                palette=[[120, 170, 230], [60, 160, 60], [110, 110, 110], [190, 120, 80],
                         [40, 70, 160]])
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root='{root}', metainfo=metainfo,
               img_suffix='.png', seg_map_suffix='.png', pipeline=pipeline)
train_dataloader = dict(
    batch_size=2, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train')))
val_dataloader = dict(
    batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
# mmseg's 20k schedule (SGD, poly learning rate) cut to 4 iterations, a checkpoint every 2
train_cfg = dict(max_iters=4, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
randomness = dict(seed=0, deterministic=True)
"""


def _write_cfg(tmp_path, root):
    cfg = tmp_path / 'fcn_r18_synthetic.py'
    cfg.write_text(textwrap.dedent(STOCK_FCN_CFG).replace('{root}', root))
    return str(cfg)


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_train_resume_and_test_stock_config(tmp_path, synthetic_root):
    cfg = _write_cfg(tmp_path, synthetic_root)
    work = str(tmp_path / 'work')

    # 1) train 2 iterations, checkpoint at iter 2
    run_tool(['tools/train.py', cfg, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2'])
    ckpt2 = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt2)
    c2 = _load(ckpt2)
    assert c2['meta']['iter'] == 2

    # 2) resume from the latest checkpoint and continue to 4 iterations
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work, '--resume'])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in log, log[-3000:]
    ckpt4 = osp.join(work, 'iter_4.pth')
    c4 = _load(ckpt4)
    assert c4['meta']['iter'] == 4
    # the optimizer state continued (momentum buffers exist and the step counter grew)
    w2, w4 = c2['state_dict'], c4['state_dict']
    assert set(w2) == set(w4)
    changed = [k for k in w2 if w2[k].is_floating_point() and not torch.equal(w2[k], w4[k])]
    assert changed, 'weights did not change after resuming'

    # 3) an uninterrupted 4-iteration run with the same seed gives the same weights
    work_full = str(tmp_path / 'work_full')
    run_tool(['tools/train.py', cfg, '--work-dir', work_full])
    wf = _load(osp.join(work_full, 'iter_4.pth'))['state_dict']
    for k in w4:
        if w4[k].is_floating_point():
            torch.testing.assert_close(w4[k], wf[k], rtol=1e-5, atol=1e-6, msg=k)

    # 4) tools/test.py on the checkpoint reports mIoU and writes the json
    test_dir = str(tmp_path / 'test_out')
    proc = run_tool(['tools/test.py', cfg, ckpt4, '--work-dir', test_dir])
    assert 'mIoU' in proc.stdout + proc.stderr
    jsons = glob.glob(osp.join(test_dir, '*', '*.json'))
    assert jsons, f'no metrics json under {test_dir}'
    metrics = json.load(open(jsons[0]))
    assert 0.0 <= metrics['mIoU'] <= 100.0


def test_test_tool_show_dir_draws_superpixels(tmp_path, synthetic_root):
    """tools/test.py --show-dir DIR with the config's visualizer (SegVisualizationHook): every
    image by default, every N-th batch with --interval N, files where README / --help say:
    DIR/vis_data/vis_image/test_<image file name>_0.png, a relative DIR in the current
    directory."""
    from mmseg_spixreg.utils.synthetic_data import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'hcfcn_r34_synthetic_coarse.py')
    ckpt = str(tmp_path / 'random.pth')
    save_random_checkpoint(config, ckpt, dict(classes=SYNTHETIC_CLASSES, palette=SYNTHETIC_PALETTE))
    images = sorted(os.listdir(osp.join(synthetic_root, 'img_dir', 'val')))
    assert len(images) == 4
    for show_dir, interval, drawn_images in (('show', [], images), ('show2', ['--interval',
                                                                              '2'], images[1::2])):
        # (mmseg's SegVisualizationHook reads runner.iter, which makes mmengine build the train
        # dataloader even in tools/test.py: the train split must exist too)
        run_tool(
            [
                osp.join(REPO_ROOT, 'tools/test.py'), config, ckpt, '--work-dir',
                str(tmp_path / 'work'), '--show-dir', show_dir
            ] + interval + [
                '--cfg-options', f'test_dataloader.dataset.data_root={synthetic_root}',
                f'train_dataloader.dataset.data_root={synthetic_root}',
                'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train'
            ],
            cwd=str(tmp_path),
            timeout=300)
        pngs = sorted(
            osp.relpath(osp.join(d, f), tmp_path) for d, _, fs in os.walk(tmp_path / show_dir)
            for f in fs if f.endswith('.png'))
        assert pngs == [f'{show_dir}/vis_data/vis_image/test_{name}_0.png' for name in drawn_images]
        for path in pngs:
            drawn = cv2.imread(str(tmp_path / path))
            assert drawn.shape == (64, 3 * 64, 3), path  # ground truth | prediction | superpixels
            boundary = (drawn[:, 128:] == (0, 255, 255)).all(axis=2)  # yellow (BGR)
            assert 0.02 < boundary.mean() < 0.6, path
