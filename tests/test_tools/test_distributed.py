# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/dist_train.sh with 2 CPU processes (gloo): regularized HCFCN-16 on generated data."""
import os.path as osp
import socket

import torch

from tests.utils import run_tool


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path, synthetic_root):
    work = str(tmp_path / 'dist')
    opts = [f'{k}_dataloader.dataset.data_root={synthetic_root}' for k in ('train', 'val', 'test')]
    opts += [
        # the generated fixture has fine labels only: train on them
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2',
        'train_cfg.max_iters=3',
        'train_cfg.val_interval=3',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1',
        'model.data_preprocessor.size=(64,64)'
    ]
    proc = run_tool(
        [
            'bash', 'tools/dist_train.sh', 'configs/demo/hcfcn_r34_synthetic_coarse.py', '2',
            '--work-dir', work, '--cfg-options'
        ] + opts,
        env={
            'PORT': str(_free_port()),
            'OMP_NUM_THREADS': '1'
        })
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log, log[-3000:]
    assert "dist_cfg: {'backend': 'gloo'}" in log, log[-3000:]
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'decode.loss_slic' in log
    ckpt = osp.join(work, 'iter_3.pth')
    assert osp.isfile(ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 3
    assert all(
        torch.isfinite(v).all() for v in state['state_dict'].values() if v.is_floating_point())
