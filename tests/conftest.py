# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Shared pytest fixtures: repository paths, the generated data set and real CamVid."""
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CAMVID_ROOT = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'data', 'camvid'))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def camvid_root():
    """Path of the real CamVid data (../shared/data/camvid); skips where it is absent."""
    if not osp.isdir(osp.join(CAMVID_ROOT, 'val')):
        pytest.skip(f'real CamVid data not found at {CAMVID_ROOT} (it ships beside the repo in '
                    'CI and on the team machines; tests that need it cannot run without it)')
    return CAMVID_ROOT


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small generated data set (mmseg folder layout), 64x64, 5 classes."""
    from mmseg_spixreg.utils.synthetic_data import make_synthetic_dataset
    root = str(tmp_path_factory.mktemp('synthetic'))
    return make_synthetic_dataset(root, num_train=8, num_val=4, size=(64, 64), seed=0)


# The demo config trained for a few iterations on the generated data set (resume / kill tests)
DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


def demo_train_options(root, iters):
    """``--cfg-options`` of a short deterministic CPU run of ``DEMO_CFG`` on ``root``.

    Args:
        root (str): The generated data set (``synthetic_root``).
        iters (int): Training iterations (checkpoint every 2).

    Returns:
        list[str]: ``key=value`` overrides.
    """
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', f'train_cfg.max_iters={iters}',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
        'model.data_preprocessor.size=(64,64)', 'randomness.seed=3', 'randomness.deterministic=True'
    ]


def run_tool(args, cwd=REPO_ROOT, timeout=900, env=None):
    """Run a repository tool with this interpreter; fail with its output if it fails."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env['PYTHON'] = sys.executable
    full_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
    if env:
        full_env.update(env)
    cmd = args if args[0] in ('bash', ) else [sys.executable] + list(args)
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'command {cmd} failed with code {proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc
