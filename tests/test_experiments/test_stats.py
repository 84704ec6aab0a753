# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""experiments/stats.py: mean ± std and Student t-tests of a fake result set, as a table."""
import math

import pytest

from stats import mean_std, student_t_test, summarize_runs, table_to_markdown
from tests.utils import FAKE_RUNS


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
    table = summarize_runs(FAKE_RUNS, pairs=[('hcfcn_reg', 'hcfcn')])
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
        summarize_runs(FAKE_RUNS, pairs=[('hcfcn', 'nope')])
