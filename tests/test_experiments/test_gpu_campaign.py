# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The GPU CamVid campaign path at a tiny scale on CPU: pack -> dataset -> campaign -> table."""
import json
import os.path as osp

import numpy as np
import pytest

from tests.utils import run_tool

# a few CPU iterations instead of the GPU budget: 1 image per batch, small crops, no workers
TINY = [
    'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False', 'crop_size=(96,128)',
    'train_dataloader.dataset.pipeline.3.crop_size=(96,128)',
    'model.data_preprocessor.size=(96,128)', 'val_dataloader.dataset.indices=[0]',
    'test_dataloader.dataset.indices=[1]', 'randomness.deterministic=True'
]


@pytest.fixture(scope='module')
def tiny_pack(tmp_path_factory, camvid_root):
    out = str(tmp_path_factory.mktemp('pack') / 'camvid_pack')
    run_tool(['experiments/pack_camvid.py', camvid_root, out, '--limit', '2', '--nproc', '1'])
    return out


def test_pack_camvid_layout_and_readback(tiny_pack, camvid_root):
    import cv2
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    import mmseg_spixreg  # noqa: F401
    with open(osp.join(tiny_pack, 'pack.json')) as f:
        manifest = json.load(f)
    assert manifest['images'] == {'train': 2, 'val': 2}
    assert manifest['jpeg_quality'] == 95 and manifest['coarse_erode'] == 12
    # the coarse labels of the paper's protocol: a strict subset of the fine ones, no label changed
    for split in ('trainannot', 'valannot'):
        assert 0.2 < manifest['coarse'][split]['labelled_fraction'] < 0.9
        assert manifest['coarse'][split]['disagreeing_with_fine'] < 0.01
    # JPEG q95 is close to the PNG original; fine labels are lossless
    stem = sorted(f[:-4] for f in __import__('os').listdir(osp.join(tiny_pack, 'train')))[0]
    jpg = cv2.imread(osp.join(tiny_pack, 'train', stem + '.jpg')).astype(np.float64)
    png = cv2.imread(osp.join(camvid_root, 'train', stem + '.png')).astype(np.float64)
    assert jpg.shape == png.shape == (360, 480, 3)
    assert np.abs(jpg - png).mean() < 3.0
    np.testing.assert_array_equal(
        cv2.imread(osp.join(tiny_pack, 'trainannot', stem + '.png'), cv2.IMREAD_UNCHANGED),
        cv2.imread(osp.join(camvid_root, 'trainannot', stem + '.png'), cv2.IMREAD_UNCHANGED))
    # read back through the campaign config's data set (JPEG suffix, coarse label folder)
    from mmengine.config import Config
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile('configs/camvid_gpu/hcfcn_r34_camvid_coarse_gpu.py')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = tiny_pack
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 2
    sample = dataset[0]
    seg = sample['data_samples'].gt_sem_seg.data
    assert tuple(sample['inputs'].shape) == (3, 352, 480)
    labelled = seg != 255
    assert 0 < labelled.float().mean() < 1 and int(seg[labelled].max()) <= 10


def test_pack_camvid_refuses_oversize_and_bad_args(tmp_path, camvid_root):
    import subprocess
    import sys
    cmd = [
        sys.executable, 'experiments/pack_camvid.py', camvid_root,
        str(tmp_path / 'p'), '--limit', '1', '--nproc', '1'
    ]
    proc = subprocess.run(cmd + ['--max-mb', '0.01'], capture_output=True, text=True)
    assert proc.returncode == 1 and 'over --max-mb 0.01' in proc.stderr
    proc = subprocess.run(cmd + ['--quality', '0'], capture_output=True, text=True)
    assert proc.returncode == 1 and '--quality must be in 1..100' in proc.stderr
    proc = subprocess.run(
        cmd[:2] + [str(tmp_path / 'missing'), str(tmp_path / 'q')], capture_output=True, text=True)
    assert proc.returncode == 1 and 'CamVid split folder not found' in proc.stderr


def test_gpu_campaign_tiny_on_cpu(tmp_path, tiny_pack):
    work = str(tmp_path / 'campaign')
    proc = run_tool([
        'experiments/gpu_campaign.py', '--work-dir', work, '--data', tiny_pack, '--methods',
        'hcfcn16', 'hcfcn', '--seeds', '0', '--epochs', '2', '--val-every', '1', '--cfg-options',
        *TINY
    ])
    assert 'campaign finished on cpu' in proc.stdout
    with open(osp.join(work, 'campaign.json')) as f:
        summary = json.load(f)
    # 2 training images / batch 8 -> 1 iteration per epoch
    assert summary['iterations'] == 2 and summary['methods'] == ['hcfcn16', 'hcfcn']
    for name in ('hcfcn16_r34_camvid_coarse_gpu', 'hcfcn_r34_camvid_coarse_gpu'):
        with open(osp.join(work, name, 'seed0', 'result.json')) as f:
            result = json.load(f)
        assert osp.basename(result['checkpoint']).startswith('best_')
        for key in ('mIoU', 'PixAcc', 'BR', 'ASA'):
            assert 0 <= result['metrics'][key] <= 100
        # the training config carried the campaign's data and budget
        train_cfgs = sorted(
            __import__('glob').glob(
                osp.join(work, name, 'seed0', 'train', '*', 'vis_data', 'config.py')))
        assert train_cfgs
        text = open(train_cfgs[-1]).read()
        assert f"data_root='{tiny_pack}'" in text and 'max_iters=2' in text
        assert "img_suffix='.jpg'" in text and 'coarse_n12/trainannot' in text
    table = open(osp.join(work, 'results.md')).read()
    assert 'hcfcn_r34_camvid_coarse_gpu' in table and 'hcfcn16_r34_camvid_coarse_gpu' in table


def test_gpu_campaign_shares_the_cpu_threads_among_seed_processes(monkeypatch):
    """Seed processes on one GPU machine split its cores (unlimited, 3 processes on 16 cores made
    one 50-frame validation take ~28 s on an H100 machine); a user's OMP_NUM_THREADS wins."""
    import os

    import gpu_campaign as campaign
    monkeypatch.setattr(os, 'cpu_count', lambda: 16)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    assert campaign.run_env(3)['OMP_NUM_THREADS'] == '5'
    assert campaign.run_env(32)['OMP_NUM_THREADS'] == '1'
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert campaign.run_env(3)['OMP_NUM_THREADS'] == '2'
