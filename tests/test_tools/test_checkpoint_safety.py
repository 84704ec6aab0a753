# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Checkpoint loading is weights-only with an allow-list: a malicious checkpoint is refused by every
entry point (load_from, --resume, tools/test.py, Pretrained init) and runs nothing.

The loader itself (allow-list, mmengine's own checkpoints, plain state dicts):
tests/test_utils/test_checkpoint.py.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.utils import DEMO_CFG, REPO_ROOT, evil_checkpoint


def _opts(root):
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=1',
        'model.data_preprocessor.size=(64,64)'
    ]


def _run_failing(args, env=None):
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env.pop('MMSEG_SPIXREG_TRUST_CHECKPOINTS', None)
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900)
    assert proc.returncode != 0, f'{args} accepted a malicious checkpoint:\n{proc.stdout[-3000:]}'
    return proc.stdout + proc.stderr


@pytest.mark.parametrize('entry', ['load_from', 'resume', 'test.py', 'Pretrained'])
def test_malicious_checkpoint_is_refused_by_every_entry_point(entry, tmp_path, synthetic_root):
    evil, marker = evil_checkpoint(tmp_path)
    work = str(tmp_path / 'work')
    train = ['tools/train.py', DEMO_CFG, '--work-dir', work]
    opts = ['--cfg-options'] + _opts(synthetic_root)
    if entry == 'load_from':
        args = train + opts + [f'load_from={evil}']
    elif entry == 'resume':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(evil)
        args = train + ['--resume'] + opts
    elif entry == 'test.py':
        args = ['tools/test.py', DEMO_CFG, evil, '--work-dir', work] + opts
    else:
        # the demo config has init_cfg=None (random init): replace it
        args = train + opts + [
            'model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={evil}'
        ]
    log = _run_failing(args)
    assert f'refused to load checkpoint {evil}' in log, log[-3000:]
    assert 'offending global(s): builtins.exec' in log, log[-3000:]
    assert 'MMSEG_SPIXREG_TRUST_CHECKPOINTS=1' in log
    assert not osp.exists(marker), 'the checkpoint ran code while being loaded'
