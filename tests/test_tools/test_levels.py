# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Every ``levels`` the assignment neck accepts trains, validates and tests through
``tools/train.py`` / ``tools/test.py`` (ASA and ASA_orig read the levels from the prediction);
a ``levels`` the model cannot use is a clear error when the config is built."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from tests.utils import DEMO_CFG, REPO_ROOT, demo_train_options, run_tool


def _metrics(log):
    """The last ``Iter(test)`` / ``Iter(val)`` line's metrics as a dict."""
    line = [ln for ln in log.splitlines() if re.search(r'Iter\((val|test)\) \[', ln)][-1]
    return {k: float(v) for k, v in re.findall(r'(\w+): (-?[0-9.]+)', line.split(']', 1)[1])}


@pytest.mark.parametrize('levels', [(8, ), (4, 8)], ids=['8', '4-8'])
def test_levels_train_validate_and_test(levels, tmp_path, synthetic_root):
    work = str(tmp_path / 'work')
    opts = demo_train_options(
        synthetic_root, iters=2) + [
            f'model.neck.levels={levels}', 'train_cfg.val_interval=2',
            'val_evaluator.1.protocol=original', 'test_evaluator.1.protocol=original'
        ]
    train = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', work, '--cfg-options'] + opts)
    val = _metrics(train.stdout + train.stderr)
    show = str(tmp_path / 'show')
    test = run_tool([
        'tools/test.py', DEMO_CFG,
        osp.join(work, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test'), '--show-dir', show, '--cfg-options'
    ] + opts)
    metrics = _metrics(test.stdout + test.stderr)
    for got in (val, metrics):
        assert 0 < got['ASA'] <= 100 and 0 < got['ASA_orig'] <= 100, got
    assert metrics['ASA'] == val['ASA']  # the same checkpoint on the same frames
    drawn = glob.glob(osp.join(show, '**', '*.png'), recursive=True)
    assert len(drawn) == 4, drawn  # the visualizer drew every val image's superpixels


@pytest.mark.parametrize('levels,match', [((4, ), 'needs the coarse logits at stride 8'),
                                          ((16, ), 'unknown assignment level 16'),
                                          ((2, 4, 8), 'unknown assignment level 2'),
                                          ((4, 16), 'must be consecutive strides')])
def test_levels_the_model_cannot_use_fail_when_built(levels, match):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_spixreg  # noqa: F401
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CFG))
    cfg.model.neck.levels = levels
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg.model)
