# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/train.py end to end on the demo config (regularized HCFCN-16) and generated data, CPU:

* exact resume (2 iterations + --resume for 2 more == 4 uninterrupted iterations);
* bad data: a label id above the class count, a data set that is not there;
* ``--amp`` without a GPU (bfloat16 autocast).
"""
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest
import torch

from tests.utils import DEMO_CFG, REPO_ROOT, demo_train_options, run_tool


def assert_equals_uninterrupted_run(ckpt, tmp_path, root, iters):
    """The checkpoint ``ckpt`` after ``iters`` iterations has the weights of an uninterrupted
    run of ``DEMO_CFG`` with the same seed (tools/train.py, ``demo_train_options``)."""
    full = str(tmp_path / 'full')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', full, '--cfg-options'] +
             demo_train_options(root, iters))
    a = torch.load(ckpt, map_location='cpu', weights_only=False)
    b = torch.load(osp.join(full, f'iter_{iters}.pth'), map_location='cpu', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == iters
    for k, v in b['state_dict'].items():
        torch.testing.assert_close(a['state_dict'][k], v, rtol=0, atol=0, msg=k)


def test_resume_equals_uninterrupted_run(tmp_path, synthetic_root):
    """2 iterations + --resume for 2 more == 4 uninterrupted iterations (CPU, same seed).

    The model uses dropout (torch RNG, restored by RNGStateHook) and random flips (numpy RNG,
    replayed by mmengine's skipping of the trained batches).
    """
    split = str(tmp_path / 'split')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--cfg-options'] +
             demo_train_options(synthetic_root, 2))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', split, '--resume', '--cfg-options'] +
                    demo_train_options(synthetic_root, 4))
    assert 'RNGStateHook: restored the RNG state' in proc.stdout + proc.stderr
    assert_equals_uninterrupted_run(osp.join(split, 'iter_4.pth'), tmp_path, synthetic_root, 4)


def test_train_with_bad_label_stops_naming_the_file(synthetic_copy, tmp_path):
    """tools/train.py on data with a label id 7 in a 5-class data set: the user sees the file."""
    bad = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0003.png')
    label = cv2.imread(bad, cv2.IMREAD_UNCHANGED)
    label[5:9, 5:9] = 7
    cv2.imwrite(bad, label)
    opts = [f'{k}_dataloader.dataset.data_root={synthetic_copy}' for k in ('train', 'val', 'test')]
    opts += [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=8', 'train_cfg.max_iters=1',
        'model.data_preprocessor.size=(64,64)'
    ]
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(
        [
            sys.executable, 'tools/train.py', DEMO_CFG, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options'
        ] + opts,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode != 0
    assert (f'ValueError: {bad}: label ids 7 (16 pixels) are neither class ids 0..4 nor the '
            'ignore index 255') in proc.stderr, proc.stderr[-3000:]


def test_headline_train_command_without_cityscapes(tmp_path):
    """`python tools/train.py configs/hcfcn_r34_cityscapes_coarse.py` where there is no data."""
    with pytest.raises(AssertionError) as err:  # run_tool: the command failed
        run_tool([
            osp.join(REPO_ROOT, 'tools', 'train.py'),
            osp.join(REPO_ROOT, 'configs', 'hcfcn_r34_cityscapes_coarse.py'), '--work-dir',
            str(tmp_path / 'work')
        ],
                 cwd=str(tmp_path),
                 timeout=300)
    out = str(err.value)
    assert 'FileNotFoundError: SpixCityscapesDataset: data not found' in out, out[-3000:]
    assert "data root 'data/cityscapes_1024x512/' (data_root) does not exist" in out
    assert 'python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT ' \
        'data/cityscapes_1024x512' in out
    assert 'Failed to load `ann_file`' not in out


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU path of --amp')
def test_train_amp_on_cpu(tmp_path, synthetic_root):
    """``tools/train.py --amp`` without a GPU: bfloat16 autocast, 2 iterations, a checkpoint."""
    work = str(tmp_path / 'amp')
    opts = [f'{k}_dataloader.dataset.data_root={synthetic_root}' for k in ('train', 'val', 'test')]
    opts += [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'model.data_preprocessor.size=(64,64)'
    ]
    proc = run_tool(
        ['tools/train.py', DEMO_CFG, '--amp', '--work-dir', work, '--cfg-options'] + opts,
        env={'OMP_NUM_THREADS': '1'})
    log = proc.stdout + proc.stderr
    assert '--amp without a GPU: CPU mixed precision (bfloat16 autocast' in log
    assert 'decode.loss_slic' in log
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 2
    for k, v in ckpt['state_dict'].items():
        if v.is_floating_point():
            assert v.dtype == torch.float32 and torch.isfinite(v).all(), k
