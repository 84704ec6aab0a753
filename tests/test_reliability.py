"""Reliability: exact resume of the regularized HCFCN-16, and clear errors for bad inputs."""
import os.path as osp

import torch

from conftest import run_tool

DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


def _opts(root, iters):
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', f'train_cfg.max_iters={iters}',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
        'model.data_preprocessor.size=(64,64)', 'randomness.seed=3',
        'randomness.deterministic=True'
    ]


def test_resume_equals_uninterrupted_run(tmp_path, synthetic_root):
    """2 iterations + --resume for 2 more == 4 uninterrupted iterations (CPU, same seed).

    The model uses dropout (torch RNG, restored by RNGStateHook) and random flips (numpy RNG,
    replayed by mmengine's skipping of the trained batches).
    """
    split = str(tmp_path / 'split')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--cfg-options'] +
             _opts(synthetic_root, 2))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--resume',
                     '--cfg-options'] + _opts(synthetic_root, 4))
    assert 'RNGStateHook: restored the RNG state' in proc.stdout + proc.stderr
    full = str(tmp_path / 'full')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', full, '--cfg-options'] +
             _opts(synthetic_root, 4))
    a = torch.load(osp.join(split, 'iter_4.pth'), map_location='cpu', weights_only=False)
    b = torch.load(osp.join(full, 'iter_4.pth'), map_location='cpu', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    for k, v in b['state_dict'].items():
        torch.testing.assert_close(a['state_dict'][k], v, rtol=0, atol=0, msg=k)
