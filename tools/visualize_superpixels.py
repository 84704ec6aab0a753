# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Draw a model's hard superpixels over images, next to its prediction and the ground truth.

For each selected image of the config's val (or test) dataset, the model predicts
``pred_sem_seg`` and (HCFCN models, ``SpixEncoderDecoder``) ``pred_superpixels``; one PNG per
image is written to ``--out-dir``:  image + superpixel boundaries | prediction | ground truth.
It also prints, per image, the number of superpixels, pixel accuracy, BR and SpixASA (ASA of the
hard superpixels; the metric's ``ASA`` is eq. 8 on the soft assignments).

Examples::

    python tools/visualize_superpixels.py configs/hcfcn_r34_suim_coarse.py work_dirs/x/best.pth \\
        --out-dir work_dirs/x/vis --num-images 4
    # random initialisation (no checkpoint), images 0 and 7 of the test split, on CPU
    python tools/visualize_superpixels.py CONFIG --split test --indices 0 7 --device cpu

During training / testing, the same panels go to mmengine's visualizer backends (local PNGs,
TensorBoard) with ``custom_hooks = [dict(type='SuperpixelVisualizationHook', interval=...)]``.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise hard superpixels of a model')
    parser.add_argument('config', help='model + dataset config')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='checkpoint (omit for a randomly initialised model)')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/superpixel_vis',
        help='where the PNGs go (default: work_dirs/superpixel_vis)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='dataset of the config to draw from (default: val)')
    parser.add_argument(
        '--num-images', type=int, default=4, help='draw the first N images (default: 4)')
    parser.add_argument(
        '--indices',
        type=int,
        nargs='+',
        default=None,
        help='draw these dataset indices instead of the first N')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (as tools/test.py)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import DATASETS, MODELS

    # Register the plug-in's datasets, models, metrics explicitly (the config's custom_imports
    # does the same through the package once it imports its subpackages).
    import mmseg_spixreg.datasets  # noqa: F401
    import mmseg_spixreg.evaluation  # noqa: F401
    import mmseg_spixreg.models  # noqa: F401
    from mmseg_spixreg.evaluation import asa_counts, boundary_recall_counts
    from mmseg_spixreg.utils import register_safe_checkpoint_loaders
    from mmseg_spixreg.visualization import superpixel_panel

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))

    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        register_safe_checkpoint_loaders()
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    else:
        print('no checkpoint given: drawing a randomly initialised model', file=sys.stderr)
    model.to(args.device).eval()

    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    palette = dataset.metainfo.get('palette')
    indices = args.indices if args.indices is not None else range(
        min(args.num_images, len(dataset)))
    os.makedirs(args.out_dir, exist_ok=True)
    for idx in indices:
        if not 0 <= idx < len(dataset):
            print(
                f'error: index {idx} out of range (dataset has {len(dataset)} images)',
                file=sys.stderr)
            return 1
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([dataset[idx]]))[0]
        image = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)[..., ::-1]
        pred = sample.pred_sem_seg.data.cpu().numpy()[0]
        gt = sample.gt_sem_seg.data.cpu().numpy()[0] if 'gt_sem_seg' in sample else None
        spix = sample.pred_superpixels.data.cpu().numpy()[0] \
            if 'pred_superpixels' in sample else None
        panel = superpixel_panel(image, spix, pred, gt, palette)
        name = osp.splitext(osp.basename(sample.img_path))[0]
        path = osp.join(args.out_dir, f'{name}_superpixels.png')
        if not cv2.imwrite(path, np.ascontiguousarray(panel[..., ::-1])):
            print(f'error: cannot write {path}', file=sys.stderr)
            return 1
        line = f'{path}: '
        if spix is None:
            line += 'no pred_superpixels (not an HCFCN model); '
        else:
            line += f'{len(np.unique(spix))} superpixels; '
        if gt is not None:
            labelled = gt != 255
            acc = (pred == gt)[labelled].mean() if labelled.any() else float('nan')
            tp, n = boundary_recall_counts(pred, gt)
            line += f'pixel acc {100 * acc:.2f}, BR {100 * tp / max(n, 1):.2f}'
            if spix is not None:
                best, total = asa_counts(spix, gt)
                line += f', SpixASA {100 * best / max(total, 1):.2f}'
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
