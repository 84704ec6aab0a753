# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Export a trained model to ONNX (standard opset-19 operators, DCNv2 as ``DeformConv``) and
optionally verify it in onnxruntime against PyTorch.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx [--shape H W]
        [--dynamic] [--opset 19] [--verify] [--verify-images IMG ...] [--cfg-options K=V ...]

The ONNX model takes ``image`` (B, 3, H, W) float32 in [0, 255] in the channel order the
network sees (RGB for every config of this project; stored in the model's metadata) and returns
``logits`` (B, num_classes, H, W) and, for HCFCN models, ``superpixels`` (B, H, W) int64 hard
superpixel ids. Normalisation and the test-time padding to a multiple of 16 are inside; resizing
(a test pipeline's ``Resize``) is not. A static model takes exactly ``--shape``; with
``--dynamic`` any batch size and any H, W that are multiples of 16 (not for models with adaptive
pooling to a grid larger than 1x1, e.g. PSPNet's pyramid pooling: an error naming the layer).

``--verify`` runs onnxruntime (CPU) and ``model.test_step`` in PyTorch on the same images
(generated ones at the export shape, and for ``--dynamic`` also at a second shape, plus
``--verify-images`` files, resized to ``--shape`` for a static model) and fails (exit 1) unless
max |logit difference| <= 1e-4, argmax agreement >= 99.9 % and the hard superpixels are
identical. Needs requirements/deploy.txt (installed by ``make install``).
"""
import argparse
import os
import os.path as osp
import sys

import mmcv
import numpy as np
from mmengine.config import DictAction
from mmseg.apis import init_model

import mmseg_spixreg  # noqa: F401  (registers the plug-in's modules)
from mmseg_spixreg.deployment import export_inputs, export_onnx, verify_onnx


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[512, 1024],
        metavar=('H', 'W'),
        help='input height and width (the input size of a static model; the example size of '
        'a dynamic one). Default: 512 1024')
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='dynamic batch size, height and width (multiples of 16)')
    parser.add_argument('--opset', type=int, default=19, help='ONNX opset (>= 19). Default: 19')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch (exit 1 if not equal)')
    parser.add_argument(
        '--verify-images', nargs='+', default=[], help='image files to verify on as well')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='not supported: test-time augmentation cannot be exported (clear error)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value), as in tools/test.py')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    for img in args.verify_images:
        if not osp.isfile(img):
            parser.error(f'--verify-images: image not found: {img}')
    if args.verify_images and not args.verify:
        parser.error('--verify-images needs --verify')
    if args.tta:
        parser.error('--tta: test-time augmentation cannot be exported (the ONNX model is one '
                     'whole-image forward pass); export without --tta and average flipped / '
                     'rescaled runs of the exported model yourself')
    return args


def verification_images(args, channel_order):
    """(3, H, W) float32 images in the network's channel order, sizes the model accepts."""
    h, w = args.shape
    images = [export_inputs(1, h, w, seed=1)[0].numpy()]
    if args.dynamic:
        images.append(export_inputs(1, h + 32, w + 64, seed=2)[0].numpy())
    for path in args.verify_images:
        img = mmcv.imread(path, channel_order=channel_order.lower())  # (H, W, 3)
        ih, iw = img.shape[:2]
        if not args.dynamic:
            img = mmcv.imresize(img, (w, h))
        elif ih % 16 or iw % 16:
            img = mmcv.imresize(img, (iw // 16 * 16 or 16, ih // 16 * 16 or 16))
        images.append(img.transpose(2, 0, 1).astype(np.float32))
    return images


def main(argv=None):
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, device='cpu', cfg_options=args.cfg_options)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    exported = export_onnx(
        model,
        args.out,
        shape=args.shape,
        dynamic=args.dynamic,
        opset=args.opset,
        metadata=dict(config=osp.basename(args.config)))
    outputs = 'logits, superpixels' if exported.with_superpixels else 'logits'
    kind = 'dynamic (H, W multiples of 16)' if args.dynamic else 'static {}x{}'.format(*args.shape)
    print(f'wrote {args.out}: input image (B, 3, H, W) {exported.channel_order} [0, 255], '
          f'{kind}; outputs {outputs}')
    if not args.verify:
        return 0
    reports = verify_onnx(model, args.out, verification_images(args, exported.channel_order),
                          exported.channel_order)
    for r in reports:
        spix = 'n/a' if r['superpixels_identical'] is None \
            else f"{100 * r['superpixels_identical']:.3f} %"
        print(f"verify {r['shape'][0]}x{r['shape'][1]}: max |logit diff| "
              f"{r['max_abs_logit_diff']:.3e} (max |logit| {r['max_abs_logit']:.2f}), argmax "
              f"agreement {100 * r['argmax_agreement']:.3f} %, identical superpixels {spix}: "
              f"{'PASS' if r['passed'] else 'FAIL'}")
    return 0 if all(r['passed'] for r in reports) else 1


if __name__ == '__main__':
    sys.exit(main())
