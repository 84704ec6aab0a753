# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""End-to-end smoke of experiments/run_experiment.py: 2 configs x 2 seeds x a few iterations."""
import glob
import json
import os.path as osp
import shutil

from mmengine.config import Config

from tests.utils import run_tool

CONFIGS = [
    'configs/demo/hcfcn16_r34_synthetic_coarse.py', 'configs/demo/hcfcn_r34_synthetic_coarse.py'
]


def _options(root):
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'model.data_preprocessor.size=(64,64)'
    ]


def test_runner_two_configs_two_seeds(tmp_path, synthetic_root):
    work = str(tmp_path / 'exp')
    args = ['experiments/run_experiment.py'] + CONFIGS + [
        '--seeds', '0', '1', '--work-dir', work, '--compare',
        'hcfcn_r34_synthetic_coarse:hcfcn16_r34_synthetic_coarse', '--metrics', 'mIoU', 'PixAcc',
        'BR', 'ASA', '--cfg-options'
    ] + _options(synthetic_root)
    run_tool(args)
    with open(osp.join(work, 'results.json')) as f:
        res = json.load(f)
    table = res['table']
    assert set(table['methods']) == {'hcfcn16_r34_synthetic_coarse', 'hcfcn_r34_synthetic_coarse'}
    for row in table['methods'].values():
        for metric in ('mIoU', 'PixAcc', 'BR', 'ASA'):
            assert row[metric]['n'] == 2
            assert 0.0 <= row[metric]['mean'] <= 100.0
    assert {t['metric'] for t in table['tests']} == {'mIoU', 'PixAcc', 'BR', 'ASA'}
    md = open(osp.join(work, 'results.md')).read()
    assert '| hcfcn_r34_synthetic_coarse | 2 |' in md and 'Student t-test' in md
    # different seeds give different runs
    seeds = res['runs']['hcfcn_r34_synthetic_coarse']
    assert seeds['0'] != seeds['1']
    # resumable: a second call skips every finished run
    proc = run_tool(args)
    assert proc.stdout.count('[skip]') == 4


def test_runner_finetune_on_train_plus_val(tmp_path, synthetic_root):
    """--finetune continues the best checkpoint on train+val with the loss-target stop rule."""
    work = str(tmp_path / 'ft')
    # the val images join fine-tuning with labels like the training set's (coarse in the paper's
    # coarse setting): the config's finetune_val_dataset, merged over its val dataset
    coarse_val = 'ann_dir_coarse_for_ft/val'
    shutil.copytree(
        osp.join(synthetic_root, 'ann_dir', 'val'),
        osp.join(synthetic_root, coarse_val),
        dirs_exist_ok=True)
    run_tool([
        'experiments/run_experiment.py', CONFIGS[1], '--seeds', '0', '--work-dir', work,
        '--finetune', '--finetune-epochs', '2', '--metrics', 'mIoU', 'BR', '--cfg-options'
    ] + _options(synthetic_root) + [f'finetune_val_dataset.data_prefix.seg_map_path={coarse_val}'])
    run_dir = osp.join(work, 'hcfcn_r34_synthetic_coarse', 'seed0')
    ft_path = osp.join(run_dir, 'finetune', 'finetune_config.py')
    ft_cfg = open(ft_path).read()
    assert "type='ConcatDataset'" in ft_cfg and 'LossTargetStopHook' in ft_cfg
    cfg = Config.fromfile(ft_path)
    train_val = cfg.train_dataloader.dataset.datasets[1]
    assert train_val.data_prefix == dict(img_path='img_dir/val', seg_map_path=coarse_val)
    assert train_val.pipeline == cfg.train_dataloader.dataset.datasets[0].pipeline
    (stop, ) = [h for h in cfg.custom_hooks if h.type == 'LossTargetStopHook']
    assert stop.dataloader.dataset.data_prefix.seg_map_path == coarse_val
    assert stop.dataloader.dataset.pipeline == cfg.val_dataloader.dataset.pipeline
    # the target: the training set (as before fine-tuning) without augmentation
    assert 'target_loss' not in stop
    assert stop.target_dataloader.dataset.data_prefix == \
        cfg.train_dataloader.dataset.datasets[0].data_prefix
    assert stop.target_dataloader.dataset.pipeline == cfg.val_dataloader.dataset.pipeline
    # testing still uses the fine val labels
    assert cfg.val_dataloader.dataset.data_prefix.seg_map_path == 'ann_dir/val'
    ft_log = open(glob.glob(osp.join(run_dir, 'finetune', '*', '*.log'))[0]).read()
    assert 'fine-tuning: target loss' in ft_log and 'fine-tuning: validation loss' in ft_log
    # it starts from the first training run's checkpoint
    assert f"load_from = '{osp.join(run_dir, 'train')}" in ft_cfg
    with open(osp.join(run_dir, 'result.json')) as f:
        result = json.load(f)
    # the tested checkpoint is the fine-tuned one
    assert osp.join('seed0', 'finetune') in result['checkpoint']
    assert 0.0 <= result['metrics']['mIoU'] <= 100.0


def test_runner_with_distributed_launchers(tmp_path, synthetic_root):
    """--gpus 2 trains with tools/dist_train.sh and tests with tools/dist_test.sh (gloo on CPU)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work = str(tmp_path / 'dist')
    proc = run_tool(
        [
            'experiments/run_experiment.py', CONFIGS[1], '--seeds', '0', '--gpus', '2',
            '--work-dir', work, '--metrics', 'mIoU', 'BR', '--cfg-options'
        ] + _options(synthetic_root),
        env={
            'PORT': str(port),
            'OMP_NUM_THREADS': '1'
        })
    out = proc.stdout
    assert 'dist_train.sh' in out and 'dist_test.sh' in out, out[-3000:]
    run_dir = osp.join(work, 'hcfcn_r34_synthetic_coarse', 'seed0')
    # both launches ran with a world size of 2
    train_logs = glob.glob(osp.join(run_dir, 'train', '*', '*.log'))
    assert train_logs and 'GPU number: 2' in open(train_logs[0]).read()
    with open(osp.join(run_dir, 'result.json')) as f:
        result = json.load(f)
    # every val image evaluated once across the two ranks
    assert 0.0 <= result['metrics']['mIoU'] <= 100.0
    assert 0.0 <= result['metrics']['BR'] <= 100.0
