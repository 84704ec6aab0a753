# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Paper protocol runner: train every (config, seed), optionally fine-tune, test, tabulate.

For each config and seed it runs ``tools/train.py`` (or ``tools/dist_train.sh`` with ``--gpus``)
into ``WORK_DIR/<config name>/seed<k>/``, picks the best-validation checkpoint (configs save it
with ``save_best``; otherwise the last one), optionally fine-tunes on train+val as in the paper
(``--finetune``: continue from that checkpoint on the concatenation of the train and val sets
until the validation loss is <= the training loss before fine-tuning (both mean losses of the
model in eval mode, over the val set and over the training set without augmentation), at most
``--finetune-epochs`` epochs, default 15; configs trained on coarse labels set
``finetune_val_dataset``, merged over their val dataset, so that the val images join training and
the stop rule with coarse labels too), then runs ``tools/test.py`` and stores the metrics in
``result.json``. Finished runs (``result.json`` present) are skipped, unfinished ones resume from
their last checkpoint, so the command can simply be started again after an interruption.

At the end it writes ``WORK_DIR/results.json`` and ``WORK_DIR/results.md``: mean ± std per
metric and method, and Student t-tests (two-sided, equal variances) between ``--compare`` pairs.

Example (CPU-scale CamVid reproduction, see docs/results.md)::

    python experiments/run_experiment.py \\
        configs/camvid_cpu/fcn16_r34_camvid_coarse_cpu.py \\
        configs/camvid_cpu/hcfcn16_r34_camvid_coarse_cpu.py \\
        configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py \\
        --seeds 0 1 2 --work-dir work_dirs/camvid_cpu \\
        --compare hcfcn_r34_camvid_coarse_cpu:hcfcn16_r34_camvid_coarse_cpu \\
                  hcfcn16_r34_camvid_coarse_cpu:fcn16_r34_camvid_coarse_cpu
"""
import argparse
import copy
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config, ConfigDict, DictAction

from stats import summarize_runs, write_results

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='+', help='config files (one method each)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--work-dir', required=True, help='root of all runs and the results table')
    p.add_argument(
        '--compare', nargs='*', default=[], help='pairs A:B of config names (file stem) to t-test')
    p.add_argument(
        '--metrics',
        nargs='*',
        default=None,
        help='metrics to tabulate (default: all numeric metrics of the test run)')
    p.add_argument(
        '--finetune',
        action='store_true',
        help='fine-tune the best checkpoint on train+val before testing (paper)')
    p.add_argument('--finetune-epochs', type=int, default=15)
    p.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='processes per run; > 1 uses tools/dist_train.sh / dist_test.sh')
    p.add_argument('--amp', action='store_true', help='pass --amp to tools/train.py')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides applied to every config (key=value)')
    p.add_argument('--alpha', type=float, default=0.05)
    return p.parse_args(argv)


def _cfg_options_args(options):
    if not options:
        return []
    out = ['--cfg-options']
    for k, v in options.items():
        out.append(f'{k}={_format_value(v)}')
    return out


def _format_value(v):
    if isinstance(v, (list, tuple)):
        inner = ','.join(_format_value(x) for x in v)
        return f'[{inner}]' if isinstance(v, list) else f'({inner})'
    return str(v)


def _run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ, PYTHON=sys.executable)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def _train_cmd(args, config, work_dir, extra):
    if args.gpus > 1:
        cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, str(args.gpus)]
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config]
    cmd += ['--work-dir', work_dir]
    if args.amp:
        cmd.append('--amp')
    return cmd + extra


def _test_cmd(args, config, ckpt, work_dir, extra):
    if args.gpus > 1:
        cmd = ['bash', osp.join(ROOT, 'tools', 'dist_test.sh'), config, ckpt, str(args.gpus)]
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'test.py'), config, ckpt]
    return cmd + ['--work-dir', work_dir] + extra


def last_checkpoint(work_dir):
    """The last checkpoint mmengine recorded in ``work_dir/last_checkpoint``."""
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'no checkpoint found in {work_dir}')


def best_checkpoint(work_dir):
    """The best-validation checkpoint the run recorded (``work_dir/best_checkpoint``, written
    by AtomicCheckpointHook), else its last checkpoint; never a stray ``best_*.pth``."""
    from mmseg_spixreg.engine.hooks import recorded_best_checkpoint
    return recorded_best_checkpoint(work_dir) or last_checkpoint(work_dir)


def latest_test_metrics(test_dir):
    """Metrics dict of the newest ``tools/test.py --work-dir test_dir`` run (its json file)."""
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'tools/test.py wrote no metrics json under {test_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def merge_dataset_cfg(base, override):
    """``override`` merged into a copy of the dataset config ``base`` (mmengine's config merge).

    Used for a config's ``finetune_val_dataset`` (the val images labelled like the training set),
    which overrides only what differs from ``val_dataloader.dataset``. Nested dicts are merged
    key by key, other values replaced, ``_delete_=True`` works as in mmengine configs.

    Args:
        base (dict): A dataset config.
        override (dict | None): Keys to replace.

    Returns:
        ConfigDict: The merged config (``base`` is not modified).
    """
    out = ConfigDict(copy.deepcopy(dict(base)))
    out.merge(override or {})
    return out


def write_finetune_config(config, ckpt, work_dir, epochs, options=None):
    """A config that continues from ``ckpt`` on train+val with the loss-target stop rule.

    The stop rule's target is the loaded checkpoint's mean loss over the training set (without
    augmentation, eval mode), its validation loss the mean over the val images labelled like
    the training set; both computed by ``LossTargetStopHook`` in the fine-tuning run.
    """
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    import mmseg_spixreg  # noqa: F401
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    train_ds = cfg.train_dataloader.dataset
    # the validation images labelled like the training set (coarse labels when training on
    # coarse labels): the config's ``finetune_val_dataset`` merged over its val dataset
    val_eval_ds = merge_dataset_cfg(cfg.val_dataloader.dataset, cfg.get('finetune_val_dataset'))
    val_ds = copy.deepcopy(val_eval_ds)
    val_ds['pipeline'] = copy.deepcopy(train_ds.get('pipeline', val_ds.get('pipeline')))
    n_train = len(DATASETS.build(train_ds))
    n_val = len(DATASETS.build(val_ds))
    iters_per_epoch = math.ceil((n_train + n_val) / cfg.train_dataloader.batch_size)
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[train_ds, val_ds])
    cfg.load_from = ckpt
    cfg.resume = False
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop',
        max_iters=epochs * iters_per_epoch,
        val_interval=epochs * iters_per_epoch + 1)
    # keep the schedule simple for the continuation: constant learning rate
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=iters_per_epoch, max_keep_ckpts=1)
    # the training set as it was before fine-tuning, without augmentation (val pipeline)
    train_eval_ds = dict(
        copy.deepcopy(train_ds), pipeline=copy.deepcopy(cfg.val_dataloader.dataset.pipeline))
    stop = dict(
        type='LossTargetStopHook',
        interval=iters_per_epoch,
        target_dataloader=dict(copy.deepcopy(cfg.val_dataloader), dataset=train_eval_ds))
    if cfg.get('finetune_val_dataset') is not None:
        stop['dataloader'] = dict(copy.deepcopy(cfg.val_dataloader), dataset=val_eval_ds)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [stop]
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'finetune_config.py')
    cfg.dump(path)
    return path


def run_one(args, config, seed):
    name = osp.splitext(osp.basename(config))[0]
    run_dir = osp.join(args.work_dir, name, f'seed{seed}')
    result_file = osp.join(run_dir, 'result.json')
    if osp.isfile(result_file):
        print(f'[skip] {name} seed {seed}: {result_file} exists', flush=True)
        with open(result_file) as f:
            return name, json.load(f)['metrics']
    opts = dict(args.cfg_options)
    opts['randomness.seed'] = seed
    extra = _cfg_options_args(opts)
    train_dir = osp.join(run_dir, 'train')
    resume = ['--resume'] if osp.isfile(osp.join(train_dir, 'last_checkpoint')) else []
    _run(_train_cmd(args, config, train_dir, resume + extra))
    ckpt = best_checkpoint(train_dir)
    test_config = config
    if args.finetune:
        ft_dir = osp.join(run_dir, 'finetune')
        ft_cfg = write_finetune_config(config, ckpt, ft_dir, args.finetune_epochs, opts)
        # the options (and seed) are already merged into the written fine-tuning config
        _run(_train_cmd(args, ft_cfg, ft_dir, []))
        final = osp.join(ft_dir, 'finetune_final.pth')
        ckpt = final if osp.isfile(final) else best_checkpoint(ft_dir)
    test_dir = osp.join(run_dir, 'test')
    _run(_test_cmd(args, test_config, ckpt, test_dir, extra))
    metrics = latest_test_metrics(test_dir)
    tmp = result_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(config=config, seed=seed, checkpoint=ckpt, metrics=metrics), f, indent=2)
    os.replace(tmp, result_file)
    return name, metrics


def main(argv=None):
    args = parse_args(argv)
    names = [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(set(names)) != len(names):
        raise ValueError(f'config file names must be distinct, got {names}')
    pairs = []
    for spec in args.compare:
        if spec.count(':') != 1:
            raise ValueError(f'--compare expects A:B, got {spec!r}')
        a, b = spec.split(':')
        for n in (a, b):
            if n not in names:
                raise ValueError(f'--compare names {n!r}, which is not one of {names}')
        pairs.append((a, b))
    runs = {}
    # seeds outermost: an interrupted campaign has whole seeds of every method
    for seed in args.seeds:
        for config in args.configs:
            name, metrics = run_one(args, config, seed)
            runs.setdefault(name, {})[seed] = metrics
    table = summarize_runs(runs, metrics=args.metrics, pairs=pairs, alpha=args.alpha)
    print(write_results(args.work_dir, runs, table))
    return table


if __name__ == '__main__':
    main()
