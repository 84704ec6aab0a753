# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Validation curves of a ``run_experiment.py`` campaign: is the schedule long enough?

Reads every run's validation scalars (``WORK_DIR/<config>/seed<k>/train/<timestamp>/vis_data/
scalars.json``, written by mmengine's LocalVisBackend; a resumed run's several timestamp
folders are merged, the later one winning) and prints, for each metric, a markdown table of the
validation value against the iteration, one column per config (mean ± std over the seeds), and
the change over the last validation interval. Optionally draws the curves (``--plot``)::

    python experiments/val_curves.py work_dirs/camvid_cpu --metrics PixAcc BR_paper \\
        --out work_dirs/camvid_cpu/val_curves.md --plot work_dirs/camvid_cpu/val_curves.png
"""
import argparse
import glob
import json
import os.path as osp
import re

import numpy as np


def read_val_scalars(train_dir):
    """Validation scalars of one training run.

    Args:
        train_dir (str): A run's ``--work-dir`` (holds ``<timestamp>/vis_data/scalars.json``).

    Returns:
        dict[int, dict[str, float]]: ``{iteration: {metric: value}}`` of the validation passes
        (the lines of scalars.json that carry no training ``loss``).
    """
    out = {}
    for path in sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                if 'loss' in rec or 'step' not in rec:
                    continue  # a training log line
                out[int(rec['step'])] = {
                    k: float(v)
                    for k, v in rec.items() if k != 'step' and isinstance(v, (int, float))
                }
    return out


def collect_curves(work_dir):
    """``{config: {seed: {iteration: {metric: value}}}}`` of every run under ``work_dir``."""
    curves = {}
    for train_dir in sorted(glob.glob(osp.join(work_dir, '*', 'seed*', 'train'))):
        seed_dir = osp.dirname(train_dir)
        match = re.fullmatch(r'seed(\d+)', osp.basename(seed_dir))
        if not match:
            continue
        scalars = read_val_scalars(train_dir)
        if scalars:
            config = osp.basename(osp.dirname(seed_dir))
            curves.setdefault(config, {})[int(match.group(1))] = scalars
    if not curves:
        raise FileNotFoundError(f'no validation scalars under {work_dir}/<config>/seed<k>/train/'
                                '<timestamp>/vis_data/scalars.json (a run_experiment.py '
                                'work dir after at least one validation)')
    return curves


def curve_table(curves, metric):
    """Markdown table of ``metric`` (mean ± std over seeds) against the iteration.

    Args:
        curves (dict): The output of :func:`collect_curves`.
        metric (str): A validation metric key, e.g. ``'PixAcc'``.

    Returns:
        str: The table, then one line per config with the change of the seed mean over the last
        validation interval.
    """
    configs = sorted(curves)
    steps = sorted({s for runs in curves.values() for run in runs.values() for s in run})
    lines = [f'| iteration | {" | ".join(configs)} |', '|---|' + '---|' * len(configs)]
    means = {c: [] for c in configs}
    for step in steps:
        cells = []
        for c in configs:
            vals = [
                run[step][metric] for run in curves[c].values()
                if step in run and metric in run[step]
            ]
            if not vals:
                cells.append('')
                continue
            mean = float(np.mean(vals))
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            means[c].append((step, mean))
            cells.append(f'{mean:.2f} ± {std:.2f} (n={len(vals)})')
        lines.append(f'| {step} | {" | ".join(cells)} |')
    lines.append('')
    for c in configs:
        if len(means[c]) >= 2:
            (s0, m0), (s1, m1) = means[c][-2], means[c][-1]
            lines.append(f'- {c}: {metric} {m0:.2f} at {s0} -> {m1:.2f} at {s1} '
                         f'({m1 - m0:+.2f})')
    return '\n'.join(lines)


def plot_curves(curves, metrics, path):
    """One panel per metric, one line per config (seed mean) with the seeds' range shaded."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for c in sorted(curves):
            steps = sorted({s for run in curves[c].values() for s in run})
            rows = [[run[s][metric] for run in curves[c].values() if s in run and metric in run[s]]
                    for s in steps]
            keep = [i for i, r in enumerate(rows) if r]
            xs = [steps[i] for i in keep]
            ax.plot(xs, [np.mean(rows[i]) for i in keep], marker='o', label=c)
            ax.fill_between(
                xs, [min(rows[i]) for i in keep], [max(rows[i]) for i in keep], alpha=0.15)
        ax.set_xlabel('iteration')
        ax.set_ylabel(f'val {metric}')
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('work_dir', help='a run_experiment.py --work-dir')
    p.add_argument(
        '--metrics',
        nargs='+',
        default=['PixAcc', 'BR_paper'],
        help='validation metrics to tabulate (default: PixAcc BR_paper)')
    p.add_argument('--out', help='also write the tables to this markdown file')
    p.add_argument('--plot', help='also draw the curves into this image file')
    args = p.parse_args(argv)
    curves = collect_curves(args.work_dir)
    text = '\n\n'.join(f'### val {m}\n\n{curve_table(curves, m)}' for m in args.metrics)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    if args.plot:
        plot_curves(curves, args.metrics, args.plot)
    return text


if __name__ == '__main__':
    main()
