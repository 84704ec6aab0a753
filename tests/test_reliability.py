"""Reliability: exact resume of the regularized HCFCN-16, and clear errors for bad inputs."""
import os.path as osp

import torch

from conftest import DEMO_CFG, demo_train_options, run_tool


def test_resume_equals_uninterrupted_run(tmp_path, synthetic_root):
    """2 iterations + --resume for 2 more == 4 uninterrupted iterations (CPU, same seed).

    The model uses dropout (torch RNG, restored by RNGStateHook) and random flips (numpy RNG,
    replayed by mmengine's skipping of the trained batches).
    """
    split = str(tmp_path / 'split')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--cfg-options'] +
             demo_train_options(synthetic_root, 2))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--resume',
                     '--cfg-options'] + demo_train_options(synthetic_root, 4))
    assert 'RNGStateHook: restored the RNG state' in proc.stdout + proc.stderr
    full = str(tmp_path / 'full')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', full, '--cfg-options'] +
             demo_train_options(synthetic_root, 4))
    a = torch.load(osp.join(split, 'iter_4.pth'), map_location='cpu', weights_only=False)
    b = torch.load(osp.join(full, 'iter_4.pth'), map_location='cpu', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    for k, v in b['state_dict'].items():
        torch.testing.assert_close(a['state_dict'][k], v, rtol=0, atol=0, msg=k)
