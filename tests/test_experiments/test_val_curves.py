# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""experiments/val_curves.py: validation curves of a run_experiment.py campaign."""
import json
import os
import os.path as osp

import pytest

import val_curves


def _write_run(root, config, seed, stamps):
    """stamps: {timestamp: [(step, PixAcc)]}; a training line is written before each val line."""
    for stamp, vals in stamps.items():
        d = osp.join(root, config, f'seed{seed}', 'train', stamp, 'vis_data')
        os.makedirs(d)
        with open(osp.join(d, 'scalars.json'), 'w') as f:
            for step, acc in vals:
                f.write(json.dumps(dict(loss=0.5, lr=5e-4, iter=step, step=step)) + '\n')
                f.write(json.dumps(dict(aAcc=acc, PixAcc=acc, BR_paper=acc / 2, step=step)) + '\n')


def test_val_curves_table_and_plot(tmp_path):
    root = str(tmp_path)
    _write_run(root, 'cfg_a', 0, {'20260101_000000': [(50, 60.0), (100, 70.0)]})
    # a resumed run: two timestamp folders, the later one re-validates 100 and wins
    _write_run(root, 'cfg_a', 1, {
        '20260101_000000': [(50, 62.0), (100, 1.0)],
        '20260101_010000': [(100, 74.0)]
    })
    _write_run(root, 'cfg_b', 0, {'20260101_000000': [(50, 50.0)]})
    curves = val_curves.collect_curves(root)
    assert curves['cfg_a'][1] == {
        50: {
            'aAcc': 62.0,
            'PixAcc': 62.0,
            'BR_paper': 31.0
        },
        100: {
            'aAcc': 74.0,
            'PixAcc': 74.0,
            'BR_paper': 37.0
        }
    }
    out, plot = str(tmp_path / 'curves.md'), str(tmp_path / 'curves.png')
    text = val_curves.main([root, '--metrics', 'PixAcc', 'BR_paper', '--out', out, '--plot', plot])
    assert '| 50 | 61.00 ± 1.41 (n=2) | 50.00 ± 0.00 (n=1) |' in text
    assert '| 100 | 72.00 ± 2.83 (n=2) |  |' in text
    assert '- cfg_a: PixAcc 61.00 at 50 -> 72.00 at 100 (+11.00)' in text
    assert '- cfg_a: BR_paper 30.50 at 50 -> 36.00 at 100 (+5.50)' in text
    assert open(out).read().strip() == text.strip()
    assert os.path.getsize(plot) > 1000


def test_val_curves_names_an_empty_work_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match='no validation scalars under'):
        val_curves.collect_curves(str(tmp_path))
