# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""experiments/collect_results.py: folders of seed runs -> one results table with t-tests."""
import pytest

from tests.utils import FAKE_RUNS, run_tool


def _write_fake_campaign(root):
    """FAKE_RUNS laid out as two run_experiment work dirs (a sweep: one option value per dir)."""
    import json
    import os
    dirs = {}
    for method, seeds in FAKE_RUNS.items():
        method_dir = root / f'sweep_{method}' / 'hcfcn_r34_camvid_coarse_cpu'
        for seed, metrics in seeds.items():
            os.makedirs(method_dir / f'seed{seed}')
            with open(method_dir / f'seed{seed}' / 'result.json', 'w') as f:
                json.dump(dict(config='c.py', seed=seed, checkpoint='x.pth', metrics=metrics), f)
        dirs[method] = str(method_dir)
    return dirs


def test_collect_results_merges_campaigns(tmp_path):
    """experiments/collect_results.py: NAME=DIR folders of seed runs -> one table with t-tests."""
    import json

    dirs = _write_fake_campaign(tmp_path)
    out = tmp_path / 'merged'
    proc = run_tool([
        'experiments/collect_results.py', f"lambda=0.3={dirs['hcfcn_reg']}",
        f"lambda=0={dirs['hcfcn']}", '--compare', 'lambda=0.3:lambda=0', '--metrics', 'BR', '--out',
        str(out)
    ])
    assert '| lambda=0.3 | 3 | 2.00 ± 1.00 |' in proc.stdout
    with open(out / 'results.json') as f:
        res = json.load(f)
    (test, ) = res['table']['tests']
    assert (test['a'], test['b'], test['metric']) == ('lambda=0.3', 'lambda=0', 'BR')
    assert test['p'] == pytest.approx(0.021312, abs=2e-6)
    assert (out / 'results.md').read_text().startswith('| method | n | BR |')


def test_collect_results_bad_input(tmp_path):
    dirs = _write_fake_campaign(tmp_path)
    with pytest.raises(AssertionError, match='no finished run'):
        run_tool(['experiments/collect_results.py', f'a={tmp_path}', '--out', str(tmp_path / 'o')])
    with pytest.raises(AssertionError, match='--compare expects A:B'):
        run_tool([
            'experiments/collect_results.py', f"a={dirs['hcfcn']}", '--compare', 'a:b', '--out',
            str(tmp_path / 'o')
        ])
