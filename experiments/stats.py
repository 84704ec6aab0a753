# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Aggregation of repeated runs into the paper's tables: mean ± std and Student t-tests.

``run_experiment.py`` trains/tests every (config, seed) and hands the per-run metric dicts to
:func:`summarize_runs`, which returns the table as JSON-able data and as markdown;
``collect_results.py`` does the same for runs of several campaigns (:func:`load_runs`).
"""
import glob
import json
import math
import os
import os.path as osp

import numpy as np
from scipy import stats


def load_runs(method_dir):
    """Per-seed metrics of the finished runs of one method (``<dir>/seed*/result.json``).

    Args:
        method_dir (str): ``WORK_DIR/<config name>`` of a ``run_experiment.py`` campaign.

    Returns:
        dict[int, dict[str, float]]: ``{seed: metrics}``.
    """
    files = sorted(glob.glob(osp.join(method_dir, 'seed*', 'result.json')))
    if not files:
        raise FileNotFoundError(f'no finished run (seed*/result.json) under {method_dir}')
    runs = {}
    for path in files:
        with open(path) as f:
            res = json.load(f)
        runs[int(res['seed'])] = res['metrics']
    return runs


def write_results(work_dir, runs, table):
    """Write ``results.json`` (runs + table) and ``results.md`` into ``work_dir``; return the md."""
    md = table_to_markdown(table)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(runs=runs, table=table), f, indent=2)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(md)
    return md


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value).

    Args:
        values (Sequence[float]): One value per seed.

    Returns:
        tuple[float, float]: (mean, std).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError('mean_std needs at least one value')
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def student_t_test(a, b):
    """Two-sided Student t-test (equal variances, as in the paper) of two groups of seeds.

    Args:
        a (Sequence[float]): Metric values of method A, one per seed.
        b (Sequence[float]): Metric values of method B, one per seed.

    Returns:
        tuple[float, float]: (t statistic, p-value); NaN where it is undefined (fewer than two
        values in a group, or both groups constant and equal).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    if np.all(a == a[0]) and np.all(b == b[0]):
        if a[0] == b[0]:
            return math.nan, math.nan
        return math.copysign(math.inf, a[0] - b[0]), 0.0
    res = stats.ttest_ind(a, b, equal_var=True)
    return float(res.statistic), float(res.pvalue)


def summarize_runs(runs, metrics=None, pairs=(), alpha=0.05):
    """Build the results table from per-run metrics.

    Args:
        runs (dict[str, dict[int, dict[str, float]]]): ``runs[method][seed][metric] = value``.
        metrics (Sequence[str], optional): Metrics to report, in order. Default: every metric
            that all runs report, sorted.
        pairs (Sequence[tuple[str, str]]): Method pairs (A, B) to compare with a t-test.
        alpha (float): Significance level for the ``significant`` flag.

    Returns:
        dict: ``{'metrics': [...], 'methods': {method: {metric: {'mean', 'std', 'n',
        'values'}}}, 'tests': [{'a', 'b', 'metric', 't', 'p', 'significant'}], 'alpha'}``.
    """
    if not runs:
        raise ValueError('no runs to summarize')
    if metrics is None:
        common = None
        for seeds in runs.values():
            for m in seeds.values():
                keys = {k for k, v in m.items() if isinstance(v, (int, float))}
                common = keys if common is None else common & keys
        metrics = sorted(common or [])
    table = {'metrics': list(metrics), 'methods': {}, 'tests': [], 'alpha': alpha}
    for method, seeds in runs.items():
        row = {}
        for metric in metrics:
            values = [float(seeds[s][metric]) for s in sorted(seeds) if metric in seeds[s]]
            if not values:
                continue
            mean, std = mean_std(values)
            row[metric] = dict(
                mean=mean,
                std=std,
                n=len(values),
                values=values,
                seeds=sorted(s for s in seeds if metric in seeds[s]))
        table['methods'][method] = row
    for a, b in pairs:
        for name in (a, b):
            if name not in runs:
                raise KeyError(f'pair method {name!r} has no runs; known: {sorted(runs)}')
        for metric in metrics:
            va = table['methods'][a].get(metric, {}).get('values', [])
            vb = table['methods'][b].get(metric, {}).get('values', [])
            t, p = student_t_test(va, vb)
            table['tests'].append(
                dict(a=a, b=b, metric=metric, t=t, p=p, significant=bool(p == p and p < alpha)))
    return table


def _fmt(x, digits):
    if x != x:  # NaN
        return 'n/a'
    return f'{x:.{digits}f}'


def table_to_markdown(table, digits=2):
    """Render :func:`summarize_runs` output as markdown (mean ± std table + t-test table)."""
    metrics = table['metrics']
    lines = ['| method | n | ' + ' | '.join(metrics) + ' |', '|---|---|' + '---|' * len(metrics)]
    for method, row in table['methods'].items():
        n = max((c['n'] for c in row.values()), default=0)
        cells = []
        for metric in metrics:
            c = row.get(metric)
            cells.append('n/a' if c is
                         None else f"{_fmt(c['mean'], digits)} ± {_fmt(c['std'], digits)}")
        lines.append(f'| {method} | {n} | ' + ' | '.join(cells) + ' |')
    if table['tests']:
        lines += [
            '', f"Student t-test (two-sided, equal variances), alpha = {table['alpha']}:", '',
            '| A | B | metric | t | p | significant |', '|---|---|---|---|---|---|'
        ]
        for t in table['tests']:
            lines.append(f"| {t['a']} | {t['b']} | {t['metric']} | {_fmt(t['t'], 3)} | "
                         f"{_fmt(t['p'], 4)} | {'yes' if t['significant'] else 'no'} |")
    return '\n'.join(lines) + '\n'
