# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Merge finished runs of several ``run_experiment.py`` campaigns into one results table.

Each ``NAME=DIR`` names a method and its runs: ``DIR`` is ``WORK_DIR/<config name>`` of a
campaign, holding ``seed*/result.json``. This is how a sweep over a config option (each value run
in its own work dir with ``--cfg-options``) becomes one table with t-tests, e.g. the lambda sweep
of docs/results.md::

    python experiments/collect_results.py \\
        lambda=0=work_dirs/camvid_cpu/hcfcn16_r34_camvid_coarse_cpu \\
        lambda=0.025=work_dirs/camvid_cpu_lambda/0.025/hcfcn_r34_camvid_coarse_cpu \\
        lambda=0.075=work_dirs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu \\
        --compare lambda=0.025:lambda=0 lambda=0.075:lambda=0 \\
        --metrics mIoU PixAcc BR ASA --out work_dirs/camvid_cpu_lambda

The method name is everything before the last ``=``. Writes ``OUT/results.md`` and
``OUT/results.json`` (same format as the runner's) and prints the markdown.
"""
import argparse

from stats import load_runs, summarize_runs, write_results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        'methods',
        nargs='+',
        metavar='NAME=DIR',
        help='method name and its WORK_DIR/<config name> folder of seed runs')
    p.add_argument('--compare', nargs='*', default=[], help='pairs A:B of method names to t-test')
    p.add_argument(
        '--metrics',
        nargs='*',
        default=None,
        help='metrics to tabulate (default: those every run reports)')
    p.add_argument('--alpha', type=float, default=0.05)
    p.add_argument('--out', required=True, help='folder for results.md / results.json')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    runs = {}
    for spec in args.methods:
        name, sep, folder = spec.rpartition('=')
        if not sep or not name or not folder:
            raise SystemExit(f'error: expected NAME=DIR, got {spec!r}')
        if name in runs:
            raise SystemExit(f'error: method name {name!r} given twice')
        try:
            runs[name] = load_runs(folder)
        except FileNotFoundError as e:
            raise SystemExit(f'error: {e}')
    pairs = []
    for spec in args.compare:
        a, sep, b = spec.rpartition(':')
        if not sep or a not in runs or b not in runs:
            raise SystemExit(f'error: --compare expects A:B with A and B among {sorted(runs)}, '
                             f'got {spec!r}')
        pairs.append((a, b))
    table = summarize_runs(runs, metrics=args.metrics, pairs=pairs, alpha=args.alpha)
    print(write_results(args.out, runs, table))
    return table


if __name__ == '__main__':
    main()
