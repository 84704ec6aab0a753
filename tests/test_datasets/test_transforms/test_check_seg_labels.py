# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability: CheckSegLabels, bad labels at training time.

Label ids above the class count and label maps of the wrong size: a clear error naming the file
(``CheckSegLabels`` right after ``LoadSegAnnotations`` in every dataset config). Missing and
undecodable files: test_load_seg_annotations.py; tools/train.py on a bad label:
tests/test_tools/test_train.py.
"""
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

import mmseg_spixreg  # noqa: F401  (registers datasets and transforms)
from mmseg_spixreg.datasets.transforms import CheckSegLabels
from tests.utils import REPO_ROOT, build_synthetic_dataset

# ----------------------------------------------------------------------------------------------
# label ids above the class count


def test_check_seg_labels_unit():
    check = TRANSFORMS.build(dict(type='CheckSegLabels', num_classes=11, check_size=True))
    seg = np.zeros((6, 8), np.uint8)
    seg[0] = 255
    seg[1, :3] = 10
    ok = dict(gt_seg_map=seg, seg_map_path='a.png', img_path='a.jpg', img_shape=(6, 8))
    assert check(dict(ok)) is not None  # 0..10 and 255 pass, nothing changed
    seg_bad = seg.copy()
    seg_bad[2, :2] = 17
    seg_bad[3, 0] = 11
    with pytest.raises(
            ValueError,
            match=r'^a\.png: label ids 11, 17 \(3 pixels\) are neither '
            r'class ids 0\.\.10 nor the ignore index 255'):
        check(dict(ok, gt_seg_map=seg_bad))
    with pytest.raises(
            ValueError, match=r'a\.png: label map is 6x8 but its image a\.jpg is '
            r'6x9'):
        check(dict(ok, img_shape=(6, 9)))
    with pytest.raises(ValueError, match='after .*LoadAnnotations'):
        check(dict(img_shape=(6, 8), seg_map_path='a.png'))  # labels exist but were not loaded
    # a bare image (mmseg's inference APIs: no seg_map_path) has no labels to check
    assert check(dict(img_shape=(6, 8))) == dict(img_shape=(6, 8))
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match='num_classes must be a positive int'):
            CheckSegLabels(num_classes=bad)


def test_camvid_label_id_17_names_the_file(camvid_root, tmp_path):
    """An 11-class CamVid label with id 17: ValueError naming the file (void 11 still passes)."""
    names = sorted(os.listdir(osp.join(camvid_root, 'trainannot')))[:2]
    for sub in ('train', 'trainannot'):
        os.makedirs(tmp_path / sub)
        for name in names:
            shutil.copy(osp.join(camvid_root, sub, name), tmp_path / sub / name)
    bad = str(tmp_path / 'trainannot' / names[1])
    label = cv2.imread(bad, cv2.IMREAD_UNCHANGED)
    assert (label == 11).any()  # real void pixels: mapped to 255 by CamVidDataset, accepted
    label[:10, :10] = 17
    cv2.imwrite(bad, label)
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'camvid.py'))
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(tmp_path)))
    sample = ds[0]['data_samples'].gt_sem_seg.data
    assert int(sample.max()) == 255 and not ((sample > 10) & (sample < 255)).any()
    with pytest.raises(ValueError) as err:
        ds[1]
    assert str(err.value).startswith(f'{bad}: label ids 17 (100 pixels) are neither class ids '
                                     '0..10 nor the ignore index 255')


# ----------------------------------------------------------------------------------------------
# label map of the wrong size


def test_label_of_wrong_size_names_both_files(synthetic_copy):
    path = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    cv2.imwrite(path, np.zeros((32, 64), np.uint8))
    ds = build_synthetic_dataset(synthetic_copy)
    img = osp.join(synthetic_copy, 'img_dir', 'train', 'train_0000.png')
    with pytest.raises(
            ValueError, match=re.escape(f'{path}: label map is 32x64 but its image '
                                        f'{img} is 64x64')):
        ds[0]


@pytest.mark.parametrize('config, num_classes', [
    ('_base_/datasets/camvid.py', 11),
    ('_base_/datasets/camvid_coarse.py', 11),
    ('_base_/datasets/cityscapes_1024x512.py', 19),
    ('_base_/datasets/cityscapes_coarse_1024x512.py', 19),
    ('_base_/datasets/suim.py', 8),
    ('_base_/datasets/suim_coarse.py', 8),
    ('_base_/datasets/synthetic_regions.py', 5),
    ('camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py', 11),
    ('demo/hcfcn_r34_synthetic_coarse.py', 5),
])
def test_dataset_configs_check_labels_after_loading(config, num_classes):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        classes = ds.get('metainfo', {}).get('classes') or \
            DATASETS.get(ds.type).METAINFO['classes']
        assert len(classes) == num_classes
        steps = [t['type'] for t in ds.pipeline]
        i = steps.index('LoadSegAnnotations')
        assert steps[i + 1] == 'CheckSegLabels', (config, loader, steps)
        assert ds.pipeline[i + 1]['num_classes'] == num_classes
        if 'model' in cfg:
            assert cfg.model.decode_head.num_classes == num_classes
    if cfg.get('tta_pipeline'):  # TestTimeAug: one list of alternatives per step
        steps = [options[0] for options in cfg.tta_pipeline[-1]['transforms']]
        i = [t['type'] for t in steps].index('LoadSegAnnotations')
        assert steps[i + 1] == dict(type='CheckSegLabels', num_classes=num_classes)
