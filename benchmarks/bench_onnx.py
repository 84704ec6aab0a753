# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Inference time of the exported ONNX model in onnxruntime (CPU) vs the PyTorch model (CPU,
eager), measured in the same run on the same inputs.

    python benchmarks/bench_onnx.py [--threads 2] [--repeat 5] [--configs CFG ...]

For each config (default: regularized HCFCN-16 on Cityscapes, 19 classes, and FCN-16) and each
input (1x3x512x1024 and a CamVid frame, 1x3x360x480: a val image from ../shared/data/camvid,
or a generated image of that size where the data is absent) the model (random initialisation,
non-zero DCN offsets) is exported to a static ONNX model and both sides are timed alternately.
PyTorch runs ``model.test_step`` (what ``tools/test.py`` and ``inference_model`` run, including
the data preprocessor and postprocessing); onnxruntime runs ``session.run`` with the same
number of intra-op threads. One line per case:

    <config> <input>: PyTorch <s> s, onnxruntime <s> s, ratio PyTorch / onnxruntime <r>

(goal: ratio >= 1.0, stretch 1.5). Medians of ``--repeat`` alternating runs after a warm-up.
"""
import argparse
import glob
import os.path as osp
import statistics
import tempfile
import time

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg  # noqa: F401
from mmseg_spixreg.deployment import (export_inputs, export_onnx, onnxruntime_session,
                                      pytorch_predictions)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CAMVID_VAL = osp.normpath(osp.join(REPO, '..', 'shared', 'data', 'camvid', 'val'))
CONFIGS = ['hcfcn_r34_cityscapes_fine.py', 'fcn16_r34_cityscapes_fine.py']


def build(name):
    """The config's model, random init, with non-zero DCN offsets (as after training)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    cfg.model.backbone.init_cfg = None
    cfg.model.pretrained = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, 'conv_offset'):
                module.conv_offset.weight.normal_(0, 1e-3)
    return model.eval()


def camvid_frame():
    """(3, 360, 480) float32 RGB: a CamVid val frame, or a generated image of that size."""
    files = sorted(glob.glob(osp.join(CAMVID_VAL, '*.png')))
    if files:
        return mmcv.imread(files[0], channel_order='rgb').transpose(2, 0, 1).astype(np.float32), \
            osp.basename(files[0])
    return export_inputs(1, 360, 480)[0].numpy(), 'generated 360x480'


def median_pair(fn_a, fn_b, repeat):
    """Median wall seconds of ``fn_a`` and ``fn_b``, run alternately after one warm-up each."""
    fn_a(), fn_b()
    times_a, times_b = [], []
    for _ in range(repeat):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times_a), statistics.median(times_b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='threads of both runtimes')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs of each')
    parser.add_argument('--configs', nargs='+', default=CONFIGS, help='configs under configs/')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame, frame_name = camvid_frame()
    inputs = [('1x3x512x1024', export_inputs(1, 512, 1024)[0].numpy()),
              (f'CamVid frame 1x3x360x480 ({frame_name})', frame)]
    print(f'threads {args.threads}, repeat {args.repeat}, torch {torch.__version__}')
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            model = build(name)
            for label, image in inputs:
                onnx_file = osp.join(tmp, 'model.onnx')
                exported = export_onnx(model, onnx_file, shape=image.shape[-2:])
                session = onnxruntime_session(onnx_file, threads=args.threads)
                batch = {'image': image[None]}
                t_torch, t_ort = median_pair(
                    lambda: pytorch_predictions(model, image, exported.channel_order),
                    lambda: session.run(None, batch), args.repeat)
                print(f'{osp.splitext(name)[0]} {label}: PyTorch {t_torch:.3f} s, onnxruntime '
                      f'{t_ort:.3f} s, ratio PyTorch / onnxruntime {t_torch / t_ort:.2f}')


if __name__ == '__main__':
    main()
