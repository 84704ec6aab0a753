# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Train a segmentor: same arguments and behaviour as mmsegmentation 1.2.2's tools/train.py,
# with the mmseg_spixreg modules registered (and mmengine's checkpoint loading made weights-only).
import logging

from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS
from runner_setup import add_runner_args, load_config, run, runner_parser


def parse_args():
    parser = runner_parser('Train a segmentor', 'train config file path',
                           'the dir to save logs and models')
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
    add_runner_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()

    cfg = load_config(args)

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
    run(main)
