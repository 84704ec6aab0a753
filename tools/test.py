# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Test (and evaluate) a segmentor: same arguments and behaviour as mmsegmentation 1.2.2's
# tools/test.py, with the mmseg_spixreg modules registered.
from mmengine.runner import Runner
from runner_setup import add_runner_args, load_config, run, runner_parser


def parse_args():
    parser = runner_parser(
        'MMSeg test (and eval) a model', 'test config file path',
        'if specified, the evaluation metric results will be dumped into the directory as json')
    parser.add_argument('checkpoint', help='checkpoint file')
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
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    add_runner_args(parser)
    args = parser.parse_args()
    if args.interval < 1:
        parser.error(f'--interval must be >= 1, got {args.interval}')
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

    cfg = load_config(args)
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
    run(main)
