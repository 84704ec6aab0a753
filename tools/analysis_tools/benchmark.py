# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Inference speed (images/s) of a trained model, as mmseg's ``tools/analysis_tools/benchmark.py``.

Usage (mmseg's arguments, plus ``--num-images``, ``--num-warmup`` and ``--cfg-options``)::

    python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT [--num-images 200] \\
        [--num-warmup 5] [--log-interval 50] [--repeat-times 1] [--work-dir DIR]

As mmseg's script: the config's test dataloader, ``model.data_preprocessor`` then
``model(..., mode='predict')`` on one batch at a time (timed from the preprocessed batch to the
prediction, ``torch.cuda.synchronize`` around it on a GPU), the first ``--num-warmup`` batches
not timed, the result written as ``fps_<timestamp>.json`` to ``--work-dir`` (default
``work_dirs/<config name>``). It works with any number of images: the dataloader is cycled until
``--num-warmup`` + ``--num-images`` images have run (mmseg's script stops at the end of the data
and prints NaN with fewer than 200 images).
"""
import argparse
import itertools
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

import mmseg_spixreg  # noqa: F401  (registers the plug-in)


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark the inference speed of a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--num-images', type=int, default=200, help='timed images (default 200, as mmseg)')
    parser.add_argument(
        '--num-warmup', type=int, default=5, help='untimed images first (default 5)')
    parser.add_argument('--log-interval', type=int, default=50, help='interval of logging')
    parser.add_argument('--work-dir', help='where the json goes (default: work_dirs/<config name>)')
    parser.add_argument('--repeat-times', type=int, default=1)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value (see mmseg tools/train.py)')
    args = parser.parse_args()
    if args.num_images < 1 or args.num_warmup < 0 or args.repeat_times < 1:
        parser.error('--num-images and --repeat-times must be >= 1, --num-warmup >= 0')
    if args.log_interval < 1:
        parser.error('--log-interval must be >= 1')
    return args


def run_once(model, data_loader, num_images: int, num_warmup: int, log_interval: int) -> float:
    """Images per second over ``num_images`` timed images (after ``num_warmup``)."""
    if len(data_loader) == 0:
        raise ValueError('the test dataloader has no images to benchmark')
    cuda = next(model.parameters()).is_cuda
    timed_images, pure_inf_time = 0, 0.0
    seen = 0
    for data in itertools.chain.from_iterable(itertools.repeat(data_loader)):
        batch = len(data['inputs'])
        data = model.data_preprocessor(data, False)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            model(data['inputs'], data['data_samples'], mode='predict')
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        seen += batch
        if seen > num_warmup:
            timed_images += batch
            pure_inf_time += elapsed
            if timed_images % log_interval < batch:
                print(f'Done image [{timed_images:<3}/ {num_images}], '
                      f'fps: {timed_images / pure_inf_time:.2f} img / s')
        if timed_images >= num_images:
            return timed_images / pure_inf_time
    raise AssertionError('unreachable: the dataloader is cycled until the images are timed')


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    work_dir = args.work_dir or osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    os.makedirs(osp.abspath(work_dir), exist_ok=True)
    json_file = osp.join(work_dir, f'fps_{timestamp}.json')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')

    torch.backends.cudnn.benchmark = False
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    benchmark_dict = dict(config=args.config, unit='img / s', num_images=args.num_images)
    fps_list = []
    for time_index in range(args.repeat_times):
        print(f'Run {time_index + 1}:')
        data_loader = Runner.build_dataloader(cfg.test_dataloader)
        model = MODELS.build(cfg.model)
        load_checkpoint(model, args.checkpoint, map_location='cpu')
        model = model.cuda() if torch.cuda.is_available() else revert_sync_batchnorm(model)
        model.eval()
        fps = run_once(model, data_loader, args.num_images, args.num_warmup, args.log_interval)
        print(f'Overall fps: {fps:.2f} img / s\n')
        benchmark_dict[f'overall_fps_{time_index + 1}'] = round(fps, 2)
        fps_list.append(fps)
    benchmark_dict['average_fps'] = round(float(np.mean(fps_list)), 2)
    benchmark_dict['fps_variance'] = round(float(np.var(fps_list)), 4)
    print(f'Average fps of {args.repeat_times} evaluations: {benchmark_dict["average_fps"]}')
    print(f'The variance of {args.repeat_times} evaluations: {benchmark_dict["fps_variance"]}')
    with open(json_file, 'w') as f:
        json.dump(benchmark_dict, f, indent=4)
    print(f'written: {json_file}')


if __name__ == '__main__':
    main()
