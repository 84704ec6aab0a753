# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""One command for the CamVid campaign on a single GPU (docs/results.md, "GPU campaign").

Runs the paper's protocol at full CamVid resolution (configs/camvid_gpu/: 480x360, random
352x480 crops + flip, batch 8, Adam 5e-4, coarse N = 12 training labels, best-validation
checkpoint on val frames 0..49) for HCFCN-16 and regularized HCFCN-16 (``--methods`` adds
FCN-16), several seeds, tests each run on the held-out val frames 50..100 with their fine labels
and writes ``WORK_DIR/results.md`` / ``results.json`` (mean ± std, Student t-tests) through
``run_experiment.py``.

The seeds run as parallel processes on the one GPU (``--parallel``, default: all seeds at once:
a batch of 8 CamVid crops does not fill an H100/H200), each process training its methods one
after the other; a final ``run_experiment.py`` call over all seeds (which skips finished runs)
writes the table. Data: the packed copy made by ``pack_camvid.py``
(``--data``, default ``data/camvid_pack``); if it is missing and ``--camvid`` exists, it is packed
first. Interrupted? Start the same command again: finished runs are kept, unfinished ones resume.

On the GPU machine (with the environment of docs/install.md)::

    python3 experiments/gpu_campaign.py --work-dir $OUT/camvid_gpu

Default budget: 2 methods x 3 seeds x 20 epochs (920 iterations each), validation every 10 epochs.
Sized from a first run on an H100 (docs/results.md, "GPU campaign"): with 3 seed processes
sharing the GPU a training iteration took 0.08 s and one validation pass over the 50 frames
~28 s, so a method takes about 3.3 minutes at this budget and the campaign about 7 (<= 8)
minutes.
"""
import argparse
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join('configs', 'camvid_gpu')
METHODS = {
    'fcn16': 'fcn16_r34_camvid_coarse_gpu',
    'hcfcn16': 'hcfcn16_r34_camvid_coarse_gpu',
    'hcfcn': 'hcfcn_r34_camvid_coarse_gpu',
}
# t-tests: regularized vs unregularized HCFCN-16, HCFCN-16 vs FCN-16
COMPARE = (('hcfcn', 'hcfcn16'), ('hcfcn16', 'fcn16'))
BATCH_SIZE = 8  # train_dataloader.batch_size of configs/camvid_gpu/camvid_gpu_schedule.py


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        '--work-dir',
        default='work_dirs/camvid_gpu',
        help='root of the runs and of results.md (default: work_dirs/camvid_gpu)')
    p.add_argument(
        '--data',
        default='data/camvid_pack',
        help='packed CamVid (pack_camvid.py output; default: data/camvid_pack)')
    p.add_argument(
        '--camvid', default='data/camvid', help='CamVid source to pack from if --data is missing')
    p.add_argument(
        '--methods',
        nargs='+',
        default=['hcfcn16', 'hcfcn'],
        choices=list(METHODS),
        help='methods to run (default: hcfcn16 hcfcn; add fcn16 if time allows)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=20, help='training epochs (default: 20)')
    p.add_argument(
        '--val-every',
        type=int,
        default=10,
        help='validate (and keep the best checkpoint) every N epochs (default: 10)')
    p.add_argument(
        '--parallel', type=int, default=None, help='seeds trained at the same time (default: all)')
    p.add_argument('--amp', action='store_true', help='mixed precision (tools/train.py --amp)')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for every run (after the campaign\'s own)')
    return p.parse_args(argv)


def iterations_per_epoch(data_root):
    """ceil(training images / batch size), from the pack's manifest."""
    manifest = osp.join(data_root, 'pack.json')
    if not osp.isfile(manifest):
        raise FileNotFoundError(f'{manifest} not found: {data_root} is not a packed CamVid '
                                '(make it with experiments/pack_camvid.py)')
    with open(manifest) as f:
        n_train = json.load(f)['images']['train']
    return math.ceil(n_train / BATCH_SIZE)


def campaign_options(args, iters_per_epoch):
    """``--cfg-options`` of every run: data location and the epoch budget in iterations."""
    val_interval = args.val_every * iters_per_epoch
    opts = [
        f'{loader}.dataset.data_root={args.data}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]
    opts += [
        f'train_cfg.max_iters={args.epochs * iters_per_epoch}',
        f'train_cfg.val_interval={val_interval}',
        f'default_hooks.checkpoint.interval={val_interval}',
        f'default_hooks.logger.interval={iters_per_epoch}'
    ]
    return opts + list(args.cfg_options)


def run_env(parallel):
    """Environment of the seed processes: the CPU threads shared out among them.

    Without a limit each process runs torch (the metrics, the data pipeline's tensor ops) on as
    many threads as the machine has cores; 3 processes doing that on 16 cores made one validation
    pass over 50 frames take ~28 s on the H100 machine. ``OMP_NUM_THREADS`` set by the user wins.
    """
    env = dict(os.environ)
    if 'OMP_NUM_THREADS' not in env:
        env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // max(1, parallel)))
    return env


def experiment_cmd(args, seeds, options, compare=False):
    configs = [osp.join(CONFIG_DIR, METHODS[m] + '.py') for m in args.methods]
    cmd = [
        sys.executable,
        osp.join('experiments', 'run_experiment.py'), *configs, '--seeds', *map(str, seeds),
        '--work-dir', args.work_dir
    ]
    if args.amp:
        cmd.append('--amp')
    if compare:
        pairs = [
            f'{METHODS[a]}:{METHODS[b]}' for a, b in COMPARE
            if a in args.methods and b in args.methods
        ]
        if pairs:
            cmd += ['--compare', *pairs]
    return cmd + ['--cfg-options', *options]


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.epochs < 1 or args.val_every < 1:
        raise SystemExit('error: --epochs and --val-every must be >= 1')
    start = time.time()
    if not osp.isfile(osp.join(args.data, 'pack.json')):
        if not osp.isdir(args.camvid):
            raise SystemExit(f'error: no packed CamVid at {args.data} and no CamVid at '
                             f'{args.camvid} to pack it from')
        subprocess.run([sys.executable, 'experiments/pack_camvid.py', args.camvid, args.data],
                       check=True)
    iters = iterations_per_epoch(args.data)
    options = campaign_options(args, iters)
    os.makedirs(args.work_dir, exist_ok=True)
    parallel = args.parallel or len(args.seeds)
    print(
        f'campaign: {args.methods} x seeds {args.seeds}, {args.epochs} epochs = '
        f'{args.epochs * iters} iterations per run, {parallel} seed(s) at a time',
        flush=True)
    env = run_env(parallel)
    failed = []
    for i in range(0, len(args.seeds), parallel):
        group = args.seeds[i:i + parallel]
        procs = []
        for seed in group:
            log = open(osp.join(args.work_dir, f'seed{seed}.log'), 'a')
            procs.append((seed, log,
                          subprocess.Popen(
                              experiment_cmd(args, [seed], options),
                              stdout=log,
                              stderr=subprocess.STDOUT,
                              env=env)))
        for seed, log, proc in procs:
            if proc.wait() != 0:
                failed.append(seed)
            log.close()
    if failed:
        raise SystemExit(f'error: seed(s) {failed} failed, see '
                         f'{args.work_dir}/seed<k>.log; run the same command again to resume')
    # all runs are finished: this call only reads their result.json and writes the table
    subprocess.run(experiment_cmd(args, args.seeds, options, compare=True), check=True)
    wall = time.time() - start
    device = 'cpu'
    try:
        import torch
        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    summary = dict(
        device=device,
        wall_s=round(wall, 1),
        methods=args.methods,
        seeds=args.seeds,
        epochs=args.epochs,
        iterations=args.epochs * iters,
        parallel=parallel,
        amp=args.amp)
    with open(osp.join(args.work_dir, 'campaign.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'campaign finished on {device} in {wall / 60:.1f} min: '
          f'{osp.join(args.work_dir, "results.md")}')
    return summary


if __name__ == '__main__':
    main()
