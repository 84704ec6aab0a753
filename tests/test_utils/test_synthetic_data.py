# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The generated data set (make demo's default) is deterministic and well-formed."""
import hashlib
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_spixreg.utils.synthetic_data import (SYNTHETIC_CLASSES, generate_sample,
                                                make_synthetic_dataset)


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(osp.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = make_synthetic_dataset(str(tmp_path / 'a'), num_train=3, num_val=2, size=(48, 64), seed=7)
    b = make_synthetic_dataset(str(tmp_path / 'b'), num_train=3, num_val=2, size=(48, 64), seed=7)
    c = make_synthetic_dataset(str(tmp_path / 'c'), num_train=3, num_val=2, size=(48, 64), seed=8)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert len(os.listdir(osp.join(a, 'img_dir', 'train'))) == 3
    assert len(os.listdir(osp.join(a, 'ann_dir', 'val'))) == 2


def test_sample_content():
    rng = np.random.default_rng(0)
    img, label = generate_sample((64, 80), 5, rng)
    assert img.shape == (64, 80, 3) and img.dtype == np.uint8
    assert label.shape == (64, 80) and label.dtype == np.uint8
    assert label.max() < len(SYNTHETIC_CLASSES)
    assert len(np.unique(label)) >= 2  # several regions
    # the image carries the regions: colour changes across label boundaries far more than inside
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    dx = np.abs(np.diff(lab, axis=1)).sum(-1)
    across = label[:, 1:] != label[:, :-1]
    assert dx[across].mean() > 2 * dx[~across].mean()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_classes'):
        make_synthetic_dataset(str(tmp_path), num_classes=9)
    with pytest.raises(ValueError, match='size'):
        make_synthetic_dataset(str(tmp_path), size=(8, 8))
