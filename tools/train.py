# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Train a segmentor: same arguments and behaviour as mmsegmentation 1.2.2's tools/train.py,
# with the mmseg_spixreg modules registered (and mmengine's checkpoint loading made weights-only).
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS
from mmseg.utils import register_all_modules

import mmseg_spixreg  # noqa: F401  (registers the plug-in's modules)
from mmseg_spixreg.utils import distributed_teardown, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch / torchrun pass --local-rank (torch>=2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()

    # register all modules in mmseg into the registries
    register_all_modules(init_default_scope=True)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # NCCL needs GPUs: fall back to gloo on CPU-only machines (README, "Train and test")
    setup_cpu_distributed(cfg)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            if is_cuda_available() or is_npu_available() or is_mlu_available() \
                    or is_musa_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.loss_scale = 'dynamic'
            else:
                # mmengine's AmpOptimWrapper asserts an accelerator: bfloat16 autocast on CPU
                cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
                cfg.optim_wrapper.dtype = 'bfloat16'
                print_log(
                    '--amp without a GPU: CPU mixed precision (bfloat16 autocast, no loss '
                    'scaling) through CPUAmpOptimWrapper',
                    logger='current',
                    level=logging.WARNING)

    # resume training
    cfg.resume = args.resume

    # build the runner from config
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.train()


if __name__ == '__main__':
    # every rank destroys its process group before the interpreter exits: a gloo group left
    # alive at shutdown can abort the process after the work is done, so a rank that finished
    # ends right there without interpreter finalisation (docs/design.md "Reliability")
    with distributed_teardown(hard_exit=True):
        main()
