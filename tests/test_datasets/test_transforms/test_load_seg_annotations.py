# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability: LoadSegAnnotations and mmcv's image loader name the file that is missing,
undecodable or not a label map; a bare image (mmseg's inference APIs) passes the annotation steps.
"""
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

import mmseg_spixreg  # noqa: F401  (registers datasets and transforms)
from tests.utils import build_synthetic_dataset


def test_annotation_steps_pass_a_bare_image():
    """What mmseg's inference APIs feed the test pipeline: an image without seg_map_path."""
    from mmseg_spixreg.datasets import CheckSegLabels, LoadSegAnnotations
    bare = dict(img=np.zeros((4, 6, 3), np.uint8), img_shape=(4, 6), ori_shape=(4, 6))
    assert LoadSegAnnotations()(dict(bare)).keys() == bare.keys()
    assert CheckSegLabels(num_classes=3, check_size=True)(dict(bare)).keys() == bare.keys()
    # with a label file, a CheckSegLabels placed before the loader is still an error
    with pytest.raises(ValueError, match='put it after'):
        CheckSegLabels(num_classes=3)(dict(bare, seg_map_path='/x/label.png'))


def test_missing_label_file_names_it(synthetic_copy):
    missing = osp.join(synthetic_copy, 'ann_dir', 'train', 'train_0000.png')
    os.remove(missing)
    ds = build_synthetic_dataset(synthetic_copy)
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        ds[0]


def test_missing_image_file_names_it(synthetic_copy):
    """A split file listing an image that is not there (images are not listed otherwise)."""
    with open(osp.join(synthetic_copy, 'split.txt'), 'w') as f:
        f.write('train_0000\ntrain_0099\n')
    ds = build_synthetic_dataset(synthetic_copy, ann_file='split.txt')
    assert len(ds) == 2
    ds[0]
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(osp.join(synthetic_copy, 'img_dir', 'train', 'train_0099.png'))):
        ds[1]


def _first_label(root):
    return osp.join(root, 'ann_dir', 'train', 'train_0000.png')


def _assert_first_item_names_its_label(root, message):
    """Loading item 0 of the data set on ``root`` raises ValueError '<its label file>: message'."""
    ds = build_synthetic_dataset(root)
    with pytest.raises(ValueError, match=re.escape(f'{_first_label(root)}: {message}')):
        ds[0]
    return ds


def test_corrupt_label_file_names_it(synthetic_copy):
    """A truncated label PNG: ValueError naming the file.

    (mmseg alone raises UnidentifiedImageError, without the path.)
    """
    path = _first_label(synthetic_copy)
    with open(path, 'rb') as f:
        head = f.read(20)
    with open(path, 'wb') as f:
        f.write(head)  # PNG signature + a cut IHDR chunk
    ds = _assert_first_item_names_its_label(synthetic_copy, 'cannot decode the label map')
    with open(path, 'wb') as f:
        f.write(b'not an image at all')
    with pytest.raises(ValueError, match='the file is corrupt or not an image'):
        ds[0]


def test_colour_label_map_names_it(synthetic_copy):
    """An RGB (colour-coded) label: mmseg would keep a 64x64x3 map; here it is an error."""
    cv2.imwrite(_first_label(synthetic_copy), np.zeros((64, 64, 3), np.uint8))
    _assert_first_item_names_its_label(
        synthetic_copy,
        'a label map must have one channel of class ids (HxW), got shape (64, 64, 3)')


def test_16_bit_label_ids_above_255_are_named(synthetic_copy):
    """mmseg casts label maps to uint8: ids 256 and 257 became 0 and 1 silently."""
    path = _first_label(synthetic_copy)
    seg = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.uint16)
    from mmseg.registry import TRANSFORMS
    load = TRANSFORMS.build(dict(type='LoadSegAnnotations'))
    cv2.imwrite(path, seg)  # a 16-bit PNG with ids <= 255 loads as before
    out = load(dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    seg[0, :3] = [256, 257, 300]
    cv2.imwrite(path, seg)
    _assert_first_item_names_its_label(synthetic_copy,
                                       '16-bit label map with ids above 255 (256, 257, 300)')


def test_empty_label_file_names_it(synthetic_copy):
    open(_first_label(synthetic_copy), 'wb').close()
    _assert_first_item_names_its_label(synthetic_copy, 'cannot decode the label map')
