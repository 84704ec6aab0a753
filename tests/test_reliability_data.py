# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability (issue 7): bad data at training time, and the converters' remaining error cases.

Label ids above the class count, label maps of the wrong size, missing image / label files: a
clear error naming the file (``CheckSegLabels`` in every dataset config, mmcv's loaders).
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

import mmseg_spixreg  # noqa: F401  (registers datasets and transforms)
from conftest import REPO_ROOT
from mmseg_spixreg.datasets.transforms import CheckSegLabels

DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


@pytest.fixture
def synthetic_copy(tmp_path, synthetic_root):
    """A writable copy of the generated data set (5 classes, 64x64)."""
    root = str(tmp_path / 'data')
    shutil.copytree(synthetic_root, root)
    return root


def _synthetic_dataset(root, split='train', **kwargs):
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CFG))
    ds = cfg.train_dataloader.dataset
    ds.update(
        data_root=root,
        data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
        **kwargs)
    return DATASETS.build(ds)


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


# ----------------------------------------------------------------------------------------------
# missing files, label map of the wrong size


def test_missing_label_file_names_it(synthetic_copy):
    missing = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    os.remove(missing)
    ds = _synthetic_dataset(synthetic_copy)
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        ds[0]


def test_missing_image_file_names_it(synthetic_copy):
    """A split file listing an image that is not there (images are not listed otherwise)."""
    with open(osp.join(synthetic_copy, 'split.txt'), 'w') as f:
        f.write('train_0000\ntrain_0099\n')
    ds = _synthetic_dataset(synthetic_copy, ann_file='split.txt')
    assert len(ds) == 2
    ds[0]
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(osp.join(synthetic_copy, 'img_dir', 'train', 'train_0099.png'))):
        ds[1]


def test_label_of_wrong_size_names_both_files(synthetic_copy):
    path = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    cv2.imwrite(path, np.zeros((32, 64), np.uint8))
    ds = _synthetic_dataset(synthetic_copy)
    img = osp.join(synthetic_copy, 'img_dir', 'train', 'train_0000.png')
    with pytest.raises(
            ValueError, match=re.escape(f'{path}: label map is 32x64 but its image '
                                        f'{img} is 64x64')):
        ds[0]


def test_corrupt_label_file_names_it(synthetic_copy):
    """A truncated label PNG: ValueError naming the file.

    (mmseg alone raises UnidentifiedImageError, without the path.)
    """
    path = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    with open(path, 'rb') as f:
        head = f.read(20)
    with open(path, 'wb') as f:
        f.write(head)  # PNG signature + a cut IHDR chunk
    ds = _synthetic_dataset(synthetic_copy)
    with pytest.raises(ValueError, match=re.escape(f'{path}: cannot decode the label map')):
        ds[0]
    with open(path, 'wb') as f:
        f.write(b'not an image at all')
    with pytest.raises(ValueError, match='the file is corrupt or not an image'):
        ds[0]


def test_colour_label_map_names_it(synthetic_copy):
    """An RGB (colour-coded) label: mmseg would keep a 64x64x3 map; here it is an error."""
    path = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    cv2.imwrite(path, np.zeros((64, 64, 3), np.uint8))
    ds = _synthetic_dataset(synthetic_copy)
    with pytest.raises(
            ValueError,
            match=re.escape(f'{path}: a label map must have one channel '
                            'of class ids (HxW), got shape (64, 64, 3)')):
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


# ----------------------------------------------------------------------------------------------
# converters: the cases of issue 7 that tests/test_converters.py does not cover


def test_cityscapes_converter_missing_label_and_no_overwrite(tmp_path, capsys):
    import cityscapes_coarse
    from test_converters import _make_cityscapes
    src, out = str(tmp_path / 'cityscapes'), str(tmp_path / 'cs')
    _make_cityscapes(src)
    args = [src, out, '--width', '32', '--height', '16', '--nproc', '1']
    assert cityscapes_coarse.main(args) == 0
    capsys.readouterr()
    # existing outputs are kept without --overwrite
    kept = osp.join(out, 'gtFine', 'val', 'frankfurt',
                    'frankfurt_000000_000294_gtFine_labelTrainIds.png')
    cv2.imwrite(kept, np.full((16, 32), 7, np.uint8))
    assert cityscapes_coarse.main(args) == 0
    assert (cv2.imread(kept, cv2.IMREAD_UNCHANGED) == 7).all()
    # a missing fine label file is named
    missing = osp.join(src, 'gtFine', 'val', 'frankfurt',
                       'frankfurt_000000_000294_gtFine_labelIds.png')
    os.remove(missing)
    assert cityscapes_coarse.main(args + ['--overwrite']) == 1
    err = capsys.readouterr().err
    assert f'neither {missing} nor' in err, err
