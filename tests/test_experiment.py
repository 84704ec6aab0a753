# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Results table of the protocol runner: mean ± std and Student t-tests on a fake result set."""
import math

import pytest

from mmseg_spixreg.utils.experiment import (mean_std, student_t_test, summarize_runs,
                                            table_to_markdown)

FAKE = {
    'hcfcn_reg': {
        0: {
            'BR': 1.0,
            'aAcc': 80.0
        },
        1: {
            'BR': 2.0,
            'aAcc': 81.0
        },
        2: {
            'BR': 3.0,
            'aAcc': 82.0
        }
    },
    'hcfcn': {
        0: {
            'BR': 4.0,
            'aAcc': 80.0
        },
        1: {
            'BR': 5.0,
            'aAcc': 81.0
        },
        2: {
            'BR': 6.0,
            'aAcc': 82.0
        }
    },
}


def test_mean_std_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


def test_student_t_by_hand():
    # pooled variance 1, t = (2 - 5) / sqrt(1 * (1/3 + 1/3)) = -3.6742; df = 4 -> p = 0.02131
    t, p = student_t_test([1, 2, 3], [4, 5, 6])
    assert t == pytest.approx(-3.0 / math.sqrt(2.0 / 3.0), rel=1e-9)
    assert p == pytest.approx(0.021312, abs=2e-6)
    # undefined cases are NaN, not an exception or a fake number
    assert all(math.isnan(x) for x in student_t_test([1.0], [2.0, 3.0]))
    assert all(math.isnan(x) for x in student_t_test([2.0, 2.0], [2.0, 2.0]))


def test_summarize_and_markdown():
    table = summarize_runs(FAKE, pairs=[('hcfcn_reg', 'hcfcn')])
    assert table['metrics'] == ['BR', 'aAcc']
    br = table['methods']['hcfcn_reg']['BR']
    assert (br['mean'], br['std'], br['n']) == (2.0, 1.0, 3)
    tests = {t['metric']: t for t in table['tests']}
    assert tests['BR']['significant'] and tests['BR']['p'] == pytest.approx(0.021312, abs=2e-6)
    assert math.isnan(tests['aAcc']['t']) is False and tests['aAcc']['p'] == pytest.approx(1.0)
    assert not tests['aAcc']['significant']
    md = table_to_markdown(table)
    assert '| hcfcn_reg | 3 | 2.00 ± 1.00 | 81.00 ± 1.00 |' in md
    assert '| hcfcn_reg | hcfcn | BR | -3.674 | 0.0213 | yes |' in md
    with pytest.raises(KeyError, match='nope'):
        summarize_runs(FAKE, pairs=[('hcfcn', 'nope')])


def _write_fake_campaign(root):
    """FAKE laid out as two run_experiment work dirs (a sweep: one option value per dir)."""
    import json
    import os
    dirs = {}
    for method, seeds in FAKE.items():
        method_dir = root / f'sweep_{method}' / 'hcfcn_r34_camvid_coarse_cpu'
        for seed, metrics in seeds.items():
            os.makedirs(method_dir / f'seed{seed}')
            with open(method_dir / f'seed{seed}' / 'result.json', 'w') as f:
                json.dump(dict(config='c.py', seed=seed, checkpoint='x.pth', metrics=metrics), f)
        dirs[method] = str(method_dir)
    return dirs


def test_collect_results_merges_campaigns(tmp_path):
    """tools/collect_results.py: NAME=DIR folders of seed runs -> one table with t-tests."""
    import json

    from conftest import run_tool
    dirs = _write_fake_campaign(tmp_path)
    out = tmp_path / 'merged'
    proc = run_tool([
        'tools/collect_results.py', f"lambda=0.3={dirs['hcfcn_reg']}", f"lambda=0={dirs['hcfcn']}",
        '--compare', 'lambda=0.3:lambda=0', '--metrics', 'BR', '--out',
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
    from conftest import run_tool
    dirs = _write_fake_campaign(tmp_path)
    with pytest.raises(AssertionError, match='no finished run'):
        run_tool(['tools/collect_results.py', f'a={tmp_path}', '--out', str(tmp_path / 'o')])
    with pytest.raises(AssertionError, match='--compare expects A:B'):
        run_tool([
            'tools/collect_results.py', f"a={dirs['hcfcn']}", '--compare', 'a:b', '--out',
            str(tmp_path / 'o')
        ])
