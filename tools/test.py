# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Test (and evaluate) a segmentor: same arguments and behaviour as mmsegmentation 1.2.2's
# tools/test.py, with the mmseg_spixreg modules registered.
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from mmseg.utils import register_all_modules

import mmseg_spixreg  # noqa: F401  (registers the plug-in's modules)
from mmseg_spixreg.utils import distributed_teardown, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help=('if specified, the evaluation metric results will be dumped'
              'into the directory as json'))
    parser.add_argument(
        '--out', type=str, help='The directory to save output prediction for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved, as '
        'DIR/vis_data/vis_image/test_<image file name>_0.png (a relative DIR is relative to the '
        'current directory)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='with --show / --show-dir: draw the images of every N-th test batch (default 1: '
        "all; mmseg's SegVisualizationHook alone draws every 50th)")
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
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
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    # torch.distributed.launch / torchrun pass --local-rank (torch>=2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.interval < 1:
        parser.error(f'--interval must be >= 1, got {args.interval}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' in default_hooks:
        visualization_hook = default_hooks['visualization']
        # Turn on visualization
        visualization_hook['draw'] = True
        visualization_hook['interval'] = args.interval
        if args.show:
            visualization_hook['show'] = True
            visualization_hook['wait_time'] = args.wait_time
        if args.show_dir:
            visualizer = cfg.visualizer
            visualizer['save_dir'] = args.show_dir
    else:
        raise RuntimeError('VisualizationHook must be included in default_hooks.'
                           'refer to usage '
                           '"visualization=dict(type=\'VisualizationHook\')"')
    return cfg


def main():
    args = parse_args()

    register_all_modules(init_default_scope=True)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    setup_cpu_distributed(cfg)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    # add output_dir in metric (mmseg's IoUMetric writes the predictions as PNG files); the
    # configs here have a list of evaluators: the IoUMetric among them writes them
    if args.out is not None:
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, (list, tuple)):
            evaluators = [evaluators]
        writers = [e for e in evaluators if e['type'].split('.')[-1] == 'IoUMetric']
        if not writers:
            raise ValueError('--out needs an IoUMetric in test_evaluator (it writes the '
                             f"predictions); this config has {[e['type'] for e in evaluators]}")
        writers[0]['output_dir'] = args.out
        writers[0]['keep_results'] = True

    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    # every rank destroys its process group before the interpreter exits: a gloo group left
    # alive at shutdown can abort the process after the work is done, so a rank that finished
    # ends right there without interpreter finalisation (docs/design.md "Reliability")
    with distributed_teardown(hard_exit=True):
        main()
