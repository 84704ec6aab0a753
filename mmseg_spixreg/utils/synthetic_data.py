# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""A small, deterministic segmentation data set the project makes itself.

Used by the tests and by ``make demo`` on a machine with no data: every image is a mosaic of
regions (a Voronoi partition with wobbly borders plus a few discs), each region belonging to one
of ``num_classes`` classes. Every class has its own colour and texture (flat, stripes, checker,
noise), jittered per region, so the class is visible from the image and boundaries are where the
colour/texture changes. Labels are dense ("fine"); coarse labels are derived from them by
``tools/dataset_converters/make_coarse_labels.py``.

Layout written (mmseg's ``BaseSegDataset`` folder convention)::

    root/img_dir/{train,val}/XXXX.png   RGB images (stored as PNG, read as BGR by mmcv)
    root/ann_dir/{train,val}/XXXX.png   uint8 labels in [0, num_classes)
"""
import os
import os.path as osp

import cv2
import numpy as np

#: Class names and base RGB colours of the generated data set.
SYNTHETIC_CLASSES = ('sky', 'grass', 'road', 'wall', 'water')
SYNTHETIC_PALETTE = [[120, 170, 230], [60, 160, 60], [110, 110, 110], [190, 120, 80], [40, 70, 160]]
_TEXTURES = ('flat', 'noise', 'stripes', 'checker', 'noise')


def _texture(kind, h, w, rng):
    """Zero-mean texture pattern of shape (h, w) with amplitude in about [-1, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 'flat':
        return np.zeros((h, w), np.float32)
    if kind == 'noise':
        return rng.uniform(-1, 1, size=(h, w)).astype(np.float32)
    if kind == 'stripes':
        period = rng.uniform(5, 9)
        angle = rng.uniform(0, np.pi)
        return np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    if kind == 'checker':
        s = int(rng.integers(4, 8))
        return ((((yy // s) + (xx // s)) % 2) * 2 - 1).astype(np.float32)
    raise ValueError(f'unknown texture {kind!r}')


def generate_sample(size, num_classes, rng):
    """Generate one (image, label) pair.

    Args:
        size (tuple[int, int]): (height, width).
        num_classes (int): Number of classes (<= len(SYNTHETIC_CLASSES)).
        rng (np.random.Generator): Source of randomness.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB uint8 image (H, W, 3) and uint8 label (H, W).
    """
    h, w = size
    n_regions = int(rng.integers(4, 8))
    seeds = rng.uniform([0, 0], [h, w], size=(n_regions, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # wobbly Voronoi borders: perturb the coordinates with smooth sinusoids
    amp, freq = 0.04 * max(h, w), rng.uniform(0.03, 0.08, size=4)
    wy = yy + amp * np.sin(freq[0] * xx + rng.uniform(0, 6)) * np.cos(freq[1] * yy)
    wx = xx + amp * np.sin(freq[2] * yy + rng.uniform(0, 6)) * np.cos(freq[3] * xx)
    dist = (wy[None] - seeds[:, 0, None, None])**2 + (wx[None] - seeds[:, 1, None, None])**2
    region = dist.argmin(0)
    # a few discs on top
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform([0, 0], [h, w])
        rad = rng.uniform(0.06, 0.16) * min(h, w)
        region[(yy - cy)**2 + (xx - cx)**2 < rad**2] = n_regions
        n_regions += 1
    region_class = rng.integers(0, num_classes, size=n_regions)
    label = region_class[region].astype(np.uint8)
    image = np.zeros((h, w, 3), np.float32)
    for r in range(n_regions):
        mask = region == r
        if not mask.any():
            continue
        c = region_class[r]
        colour = np.asarray(SYNTHETIC_PALETTE[c], np.float32) + rng.uniform(-25, 25, size=3)
        tex = _texture(_TEXTURES[c % len(_TEXTURES)], h, w, rng)
        image[mask] = colour + 18.0 * tex[mask][:, None]
    image += rng.normal(0, 4.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_synthetic_dataset(root, num_train=24, num_val=8, size=(128, 128), num_classes=5, seed=0):
    """Write the generated data set to ``root`` (deterministic for a given seed).

    Args:
        root (str): Output directory (created).
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        size (tuple[int, int]): (height, width) of every image.
        num_classes (int): Number of classes, 2..len(SYNTHETIC_CLASSES).
        seed (int): Seed of the generator.

    Returns:
        str: ``root``.
    """
    if not 2 <= num_classes <= len(SYNTHETIC_CLASSES):
        raise ValueError(f'num_classes must be in [2, {len(SYNTHETIC_CLASSES)}], got {num_classes}')
    if min(size) < 16:
        raise ValueError(f'size must be at least 16x16, got {size}')
    rng = np.random.default_rng(seed)
    for split, n in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, 'img_dir', split)
        ann_dir = osp.join(root, 'ann_dir', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(n):
            image, label = generate_sample(size, num_classes, rng)
            name = f'{split}_{i:04d}.png'
            cv2.imwrite(osp.join(img_dir, name), image[:, :, ::-1])
            cv2.imwrite(osp.join(ann_dir, name), label)
    return root
