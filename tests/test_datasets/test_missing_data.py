# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Missing data (mmseg_spixreg.datasets.missing_data): every data set config on a machine without
its data names what is missing and the docs/data.md command that makes it."""
import copy
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmseg_spixreg.datasets  # noqa: F401  (registers CamVidDataset, SUIMDataset)
import mmseg_spixreg.evaluation  # noqa: F401  (registers SuperpixelBoundaryMetric)
from tests.utils import DATASET_CFG_DIR, REPO_ROOT, build_dataset

init_default_scope('mmseg')

DATASET_CONFIGS = [
    'camvid', 'camvid_coarse', 'cityscapes_1024x512', 'cityscapes_coarse_1024x512', 'suim',
    'suim_coarse'
]


def _data_doc():
    """docs/data.md's converter section, whitespace-normalised (the commands the errors cite)."""
    text = open(osp.join(REPO_ROOT, 'docs', 'data.md')).read()
    section = text.split('\n## Data sets and converters\n', 1)[1].split('\n## ', 1)[0]
    return ' '.join(section.split())


def _expected_steps(name, split):
    """The instructions each data set's error must give (as docs/data.md has them)."""
    coarse_train = split == 'train' and name.endswith('coarse')
    if name.startswith('camvid'):
        if coarse_train:
            return [
                'python tools/dataset_converters/make_coarse_labels.py '
                'data/camvid/trainannot data/camvid_coarse/n12/trainannot '
                '--erode 12 --ignore-index 11 255'
            ]
        return ['python tools/dataset_converters/link_camvid.py']
    if name.startswith('suim'):
        steps = ['python tools/dataset_converters/suim.py SUIM_ROOT data/suim']
        if coarse_train:
            steps.append('python tools/dataset_converters/make_coarse_labels.py '
                         'data/suim/ann_dir/train_val data/suim/ann_dir_coarse_n12/train_val '
                         '--erode 12')
        return steps
    return [
        'python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT '
        'data/cityscapes_1024x512'
    ]


@pytest.mark.parametrize('name', DATASET_CONFIGS)
def test_missing_data_names_what_is_missing_and_the_converter(name, tmp_path, monkeypatch):
    """Every data set, train / val / test dataloader, on a machine without the data."""
    monkeypatch.chdir(tmp_path)  # the configs' relative paths point at nothing here
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, f'{name}.py'))
    doc = _data_doc()
    for split in ('train', 'val', 'test'):
        with pytest.raises(FileNotFoundError) as err:
            build_dataset(cfg[f'{split}_dataloader'].dataset)
        msg = str(err.value)
        assert 'data not found' in msg and 'does not exist' in msg, msg
        assert 'Failed to load' not in msg
        # the first missing thing is named with the working directory it is relative to
        assert str(tmp_path) in msg
        for step in _expected_steps(name, split):
            assert step in msg, (split, msg)
            assert step in doc, f'docs/data.md lacks {step!r}'
        if len(_expected_steps(name, split)) == 2:  # steps in the order they must run
            first, second = _expected_steps(name, split)
            assert msg.index(first) < msg.index(second)


def test_missing_label_folder_split_file_and_empty_folder(tmp_path):
    """Images present, coarse labels not made yet; a split file missing; an empty folder."""
    img_dir = tmp_path / 'train'
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'camvid_coarse.py'))
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    ds.data_prefix = dict(img_path=str(img_dir), seg_map_path=str(tmp_path / 'n12/trainannot'))
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(ds)
    msg = str(err.value)
    assert f"label folder '{tmp_path}/n12/trainannot' (data_prefix.seg_map_path) does not " \
        'exist' in msg
    assert 'image folder' not in msg  # it exists
    assert 'make_coarse_labels.py data/camvid/trainannot' in msg
    # the same folder with its labels loads
    (tmp_path / 'n12/trainannot').mkdir(parents=True)
    assert len(build_dataset(ds)) == 1
    # an empty image folder is an error too (mmseg: an empty data set that fails later)
    os.remove(img_dir / 'a.png')
    with pytest.raises(FileNotFoundError, match=r"has no image ending in '\.png'"):
        build_dataset(ds)
    # SUIM: data root present, split file missing
    suim = Config.fromfile(osp.join(DATASET_CFG_DIR, 'suim.py')).val_dataloader.dataset
    (tmp_path / 'suim/img_dir/train_val').mkdir(parents=True)
    (tmp_path / 'suim/ann_dir/train_val').mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(suim, data_root=str(tmp_path / 'suim'))
    assert f"split file '{tmp_path}/suim/splits/val.txt' (ann_file) does not exist" in \
        str(err.value)
    (tmp_path / 'suim/splits').mkdir()
    (tmp_path / 'suim/splits/val.txt').write_text('')
    with pytest.raises(FileNotFoundError, match='lists no image'):
        build_dataset(suim, data_root=str(tmp_path / 'suim'))
    with pytest.raises(ValueError, match='prepare_hint must be'):
        build_dataset(suim, data_root=str(tmp_path / 'suim'), prepare_hint=[])


def test_empty_image_or_label_file_is_named_at_build_time(tmp_path):
    """A 0-byte image or label (an interrupted copy) is named when the data set is built, not
    left to OpenCV's nameless ``!buf.empty()`` assertion when its sample loads."""
    img_dir, ann_dir = tmp_path / 'img', tmp_path / 'ann'
    img_dir.mkdir()
    ann_dir.mkdir()
    for name in ('a', 'b'):
        cv2.imwrite(str(img_dir / f'{name}.png'), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(ann_dir / f'{name}.png'), np.zeros((8, 8), np.uint8))
    cfg = Config.fromfile(osp.join(DATASET_CFG_DIR, 'camvid.py'))
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    ds.data_root = None
    ds.data_prefix = dict(img_path=str(img_dir), seg_map_path=str(ann_dir))
    assert len(build_dataset(ds)) == 2
    for empty in (img_dir / 'b.png', ann_dir / 'a.png'):
        open(empty, 'w').close()
        with pytest.raises(ValueError, match=r'1 empty file\(s\) \(0 bytes\)') as err:
            build_dataset(ds)
        assert str(empty) in str(err.value)
        cv2.imwrite(
            str(empty), np.zeros((8, 8, 3) if empty.parent == img_dir else (8, 8), np.uint8))
