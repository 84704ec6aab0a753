# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Segment one image with a trained model and draw the result (mmseg's demo/image_demo.py).

    python demo/image_demo.py IMG CONFIG CHECKPOINT [--out-file F] [--device D] [--opacity A]
        [--with-superpixels] [--title T] [--with-labels]

Without ``--out-file`` the drawing is shown in a window. ``--with-superpixels`` adds, for HCFCN
models (those returning ``pred_superpixels``), a tile with the hard-superpixel boundaries over
the image next to the prediction overlay (through ``SpixSegLocalVisualizer``).
"""
import os.path as osp
import sys
from argparse import ArgumentParser

import mmcv
import torch
from mmengine.model import revert_sync_batchnorm
from mmseg.apis import inference_model, init_model, show_result_pyplot

import mmseg_spixreg  # noqa: F401  (registers the plug-in's modules)
from mmseg_spixreg.visualization import SpixSegLocalVisualizer


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', default=None, help='write the drawing here (no window)')
    parser.add_argument(
        '--device',
        default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device used for inference (default: cuda:0 where available, else cpu)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the painted segmentation map, in (0, 1]')
    parser.add_argument(
        '--with-superpixels',
        action='store_true',
        help='also draw the hard-superpixel boundaries (HCFCN models only)')
    parser.add_argument(
        '--with-labels',
        action='store_true',
        default=False,
        help='write class names into the overlay')
    parser.add_argument('--title', default='result', help='the image identifier')
    args = parser.parse_args(argv)
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    if not osp.isfile(args.img):
        parser.error(f'image not found: {args.img}')
    return args


def main(argv=None):
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, device=args.device)
    if args.device == 'cpu':
        model = revert_sync_batchnorm(model)
    result = inference_model(model, args.img)
    show = args.out_file is None
    if not args.with_superpixels:
        show_result_pyplot(
            model,
            args.img,
            result,
            title=args.title,
            opacity=args.opacity,
            with_labels=args.with_labels,
            draw_gt=False,
            show=show,
            out_file=args.out_file)
        return
    if 'pred_superpixels' not in result:
        sys.exit(f'error: --with-superpixels: the model of {args.config} '
                 f'({type(model).__name__}) returns no pred_superpixels; only HCFCN models '
                 '(SpixEncoderDecoder with an HCFCNHead) have superpixels')
    visualizer = SpixSegLocalVisualizer(alpha=args.opacity)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'], palette=model.dataset_meta['palette'])
    visualizer.add_datasample(
        args.title,
        mmcv.imread(args.img, channel_order='rgb'),
        result,
        draw_gt=False,
        show=show,
        out_file=args.out_file,
        with_labels=args.with_labels)
    if args.out_file is not None:
        print(f'written: {args.out_file}')


if __name__ == '__main__':
    main()
