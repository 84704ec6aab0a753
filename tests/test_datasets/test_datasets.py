# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Dataset classes and configs/_base_/datasets/*: CamVid (real data), SUIM, Cityscapes coarse.

Data that is not there: tests/test_datasets/test_missing_data.py."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmseg_spixreg.datasets  # noqa: F401  (registers CamVidDataset, SUIMDataset)
import mmseg_spixreg.evaluation  # noqa: F401  (registers SuperpixelBoundaryMetric)
from tests.utils import (CAMVID_ROOT, DATASET_CFG_DIR, REPO_ROOT, build_dataset, make_cityscapes,
                         make_suim)

needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID_ROOT, 'valannot')),
    reason=f'real CamVid data not found at {CAMVID_ROOT}')

init_default_scope('mmseg')


@pytest.fixture
def in_repo_root(monkeypatch):
    """Configs give paths relative to the repository root (where tools/train.py runs)."""
    monkeypatch.chdir(REPO_ROOT)


def test_all_dataset_configs_load():
    names = [
        'camvid', 'camvid_coarse', 'cityscapes_1024x512', 'cityscapes_coarse_1024x512', 'suim',
        'suim_coarse'
    ]
    for name in names:
        cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, f'{name}.py'))
        assert [e['type'] for e in cfg.val_evaluator] == ['IoUMetric',
                                                          'SuperpixelBoundaryMetric'], name
        train = cfg.train_dataloader.dataset.pipeline
        if not name.startswith('camvid'):
            crop = [t for t in train if t['type'] == 'RandomCrop'][0]
            assert tuple(crop['crop_size']) == (512, 512), name
        assert any(t['type'] == 'RandomFlip' for t in train), name


@needs_camvid
def test_camvid_val_void_becomes_ignore(in_repo_root):
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'camvid.py'))
    val = build_dataset(cfg.val_dataloader.dataset)
    assert len(val) == 101
    assert val.metainfo['classes'][0] == 'Sky' and len(val.metainfo['classes']) == 11
    assert val.metainfo['label_map'] == {11: 255}
    for idx in range(3):
        sample = val[idx]['data_samples']
        gt = sample.gt_sem_seg.data.numpy()[0]
        raw = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
        assert gt.shape == raw.shape == (360, 480)
        assert (raw == 11).any()  # these images do contain void
        assert np.array_equal(gt, np.where(raw == 11, 255, raw))


@needs_camvid
def test_camvid_train_pipeline_and_class_subset(in_repo_root):
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'camvid.py'))
    train = build_dataset(cfg.train_dataloader.dataset, indices=2)
    sample = train[0]
    assert tuple(sample['inputs'].shape) == (3, 352, 352)
    assert not (sample['data_samples'].gt_sem_seg.data == 11).any()
    # Selecting classes still maps void to 255 and renumbers the rest.
    subset = build_dataset(
        cfg.val_dataloader.dataset, indices=1, metainfo=dict(classes=('Road', 'Car')))
    assert subset.metainfo['label_map'][3] == 0 and subset.metainfo['label_map'][8] == 1
    assert subset.metainfo['label_map'][11] == 255
    gt = subset[0]['data_samples'].gt_sem_seg.data.numpy()
    assert set(np.unique(gt)) <= {0, 1, 255}


@needs_camvid
def test_camvid_coarse_config_reads_tool_output(in_repo_root, tmp_path):
    import make_coarse_labels
    names = sorted(os.listdir(osp.join(CAMVID_ROOT, 'trainannot')))[:2]
    src = tmp_path / 'fine'
    src.mkdir()
    for name in names:
        os.symlink(osp.abspath(osp.join(CAMVID_ROOT, 'trainannot', name)), src / name)
    coarse_dir = tmp_path / 'coarse' / 'trainannot'
    make_coarse_labels.convert(
        str(src), str(coarse_dir), erode=12, ignore_values=(11, 255), nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'camvid_coarse.py'))
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.data_prefix.seg_map_path == 'data/camvid_coarse/n12/trainannot'
    ds_cfg.data_prefix.seg_map_path = str(coarse_dir)  # absolute: not joined with data_root
    ds_cfg.data_prefix.img_path = osp.join(CAMVID_ROOT, 'train')
    ds_cfg.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    train = build_dataset(ds_cfg, indices=2)  # the first two (sorted) images: the converted ones
    sample = train[0]['data_samples']
    assert sample.seg_map_path == osp.join(str(coarse_dir), names[0])
    gt = sample.gt_sem_seg.data.numpy()[0]
    assert 0.3 < (gt == 255).mean() < 0.6  # coarse: a large unlabelled part


def test_suim_dataset_from_converter_output(tmp_path):
    import suim
    make_suim(str(tmp_path / 'SUIM'), n_train_val=6, n_test=2)
    out = str(tmp_path / 'suim')
    suim.convert(str(tmp_path / 'SUIM'), out, num_val=2, nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'suim.py'))
    sizes = {}
    for split in ('train', 'val', 'test'):
        ds = build_dataset(cfg[f'{split}_dataloader'].dataset, data_root=out)
        sizes[split] = len(ds)
        sample = ds[0]
        gt = sample['data_samples'].gt_sem_seg.data
        assert int(gt.max()) < 8
    assert sizes == dict(train=4, val=2, test=2)
    assert ds.metainfo['classes'][1] == 'human divers'
    coarse_cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'suim_coarse.py'))
    assert coarse_cfg.train_dataloader.dataset.data_prefix.seg_map_path == \
        'ann_dir_coarse_n12/train_val'
    assert coarse_cfg.val_dataloader.dataset.data_prefix.seg_map_path == 'ann_dir/train_val'


def test_cityscapes_coarse_config_reads_converter_output(tmp_path):
    import cityscapes_coarse
    make_cityscapes(str(tmp_path / 'raw'), size=(1024, 512))
    out = str(tmp_path / 'cs')
    cityscapes_coarse.convert(str(tmp_path / 'raw'), out, nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'cityscapes_coarse_1024x512.py'))
    train = build_dataset(cfg.train_dataloader.dataset, data_root=out)
    assert type(train).__name__ == 'SpixCityscapesDataset' and len(train) == 1
    item = train[0]
    assert item['data_samples'].seg_map_path.endswith(
        osp.join('gtCoarse', 'train', 'bremen', 'bremen_000001_000019_gtCoarse_labelTrainIds.png'))
    assert tuple(item['inputs'].shape) == (3, 512, 512)
    val = build_dataset(cfg.val_dataloader.dataset, data_root=out)
    test = build_dataset(cfg.test_dataloader.dataset, data_root=out)
    assert len(val) == 2 and len(test) == 1
    assert val[0]['data_samples'].seg_map_path.endswith('_gtFine_labelTrainIds.png')
    gt = test[0]['data_samples'].gt_sem_seg.data.numpy()[0]
    assert gt.shape == (512, 1024) and set(np.unique(gt)) == {0, 10, 13, 255}
    fine_cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'cityscapes_1024x512.py'))
    fine_train = build_dataset(fine_cfg.train_dataloader.dataset, data_root=out)
    assert fine_train[0]['data_samples'].seg_map_path.endswith('_gtFine_labelTrainIds.png')
