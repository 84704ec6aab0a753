# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Convert SUIM (Islam et al., IROS 2020) to mmseg's img_dir / ann_dir layout.

Input (the official release)::

    SUIM/train_val/images/*.jpg   SUIM/train_val/masks/*.bmp
    SUIM/TEST/images/*.jpg        SUIM/TEST/masks/*.bmp

Masks are RGB-coded, one of 8 colours with every channel 0 or 255. The class id is the 3-bit code
``4 * R + 2 * G + B`` (channels as bits):

    0 BW background waterbody (000)   4 RO robots (100)
    1 HD human divers (001)           5 RI reefs and invertebrates (101)
    2 PF plants and sea-grass (010)   6 FV fish and vertebrates (110)
    3 WR wrecks and ruins (011)       7 SR sea-floor and rocks (111)

Some masks carry compression off-colours (e.g. 0/254/3). Each pixel is mapped to the nearest code
(per channel: >= 128 is 1); pixels whose channels lie more than ``--max-deviation`` from 0 or 255
are *unknown colours* and raise an error naming the file. Fixed pixels are counted and reported.

Output (``--out-dir``)::

    img_dir/train_val/<name>.jpg   ann_dir/train_val/<name>.png   (class ids, uint8)
    img_dir/test/<name>.jpg        ann_dir/test/<name>.png
    splits/train.txt  splits/val.txt  splits/test.txt

The paper's split: 150 images of train_val (random, ``--seed``) for validation, the rest for
training; the official TEST set for testing. Images and masks are resized by ``--scale``
(default 0.5, "halved" as in the paper; images with area interpolation, masks nearest).

Example::

    python tools/dataset_converters/suim.py /path/to/SUIM data/suim --nproc 2
"""
import argparse
import os
import os.path as osp
import sys
from functools import partial
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from converter_utils import (add_worker_args, convert_or_report, map_with_progress, read_image,
                             write_image_atomic, write_text_atomic)

SUIM_CLASSES = ('BW', 'HD', 'PF', 'WR', 'RO', 'RI', 'FV', 'SR')
MASK_EXTENSIONS = ('.bmp', '.png', '.jpg', '.jpeg')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
SPLITS = (('train_val', 'train_val'), ('TEST', 'test'))


def rgb_mask_to_ids(mask_rgb: np.ndarray,
                    max_deviation: int = 100,
                    path: str = '<array>') -> Tuple[np.ndarray, int]:
    """Map an RGB-coded SUIM mask to class ids, fixing off-colours to the nearest code.

    Args:
        mask_rgb (np.ndarray): RGB mask, shape (H, W, 3), uint8.
        max_deviation (int): Largest distance of a channel from 0 or 255 that is still fixed to
            the nearest code; beyond it the colour is unknown. Defaults to 100.
        path (str): File name used in error messages. Defaults to '<array>'.

    Returns:
        tuple[np.ndarray, int]: Class ids, shape (H, W), uint8; number of fixed pixels.

    Raises:
        ValueError: For a wrong shape or unknown colours (message names the file, the number
            of such pixels and a few examples).
    """
    if mask_rgb.ndim != 3 or mask_rgb.shape[2] != 3:
        raise ValueError(f'SUIM mask must be RGB (H, W, 3), got {mask_rgb.shape}: {path}')
    bits = mask_rgb >= 128
    # Per pixel: the largest distance of a channel from its nearest code value (0 or 255).
    deviation = np.where(bits, 255 - mask_rgb.astype(np.int16), mask_rgb).max(axis=2)
    unknown = deviation > max_deviation
    if unknown.any():
        ys, xs = np.nonzero(unknown)
        examples = ', '.join(f'{tuple(int(v) for v in mask_rgb[y, x])} at (x={x}, y={y})'
                             for y, x in list(zip(ys, xs))[:3])
        raise ValueError(f'{int(unknown.sum())} pixels with unknown colours (a channel more than '
                         f'{max_deviation} from 0/255) in SUIM mask {path}, e.g. {examples}')
    ids = (bits[..., 0].astype(np.uint8) * 4 + bits[..., 1] * 2 + bits[..., 2]).astype(np.uint8)
    return ids, int(np.count_nonzero(deviation))


def _find_with_ext(directory: str, stem: str, extensions: Sequence[str]) -> str:
    for ext in extensions:
        for candidate in (ext, ext.upper()):
            path = osp.join(directory, stem + candidate)
            if osp.isfile(path):
                return path
    raise FileNotFoundError(f'no mask for image {stem!r}: none of '
                            f'{[osp.join(directory, stem + e) for e in extensions]} exists')


def list_pairs(src_split_dir: str) -> List[Tuple[str, str, str]]:
    """(name, image path, mask path) for every image of one SUIM split directory.

    Args:
        src_split_dir (str): e.g. ``SUIM/train_val`` with ``images/`` and ``masks/``.

    Returns:
        list[tuple[str, str, str]]: Sorted by name.

    Raises:
        FileNotFoundError: Missing directories or a missing mask (naming the image).
    """
    img_dir = osp.join(src_split_dir, 'images')
    mask_dir = osp.join(src_split_dir, 'masks')
    for d in (img_dir, mask_dir):
        if not osp.isdir(d):
            raise FileNotFoundError(f'SUIM directory not found: {d}')
    pairs = []
    for fname in sorted(os.listdir(img_dir)):
        stem, ext = osp.splitext(fname)
        if ext.lower() not in IMAGE_EXTENSIONS or fname.startswith('.'):
            continue
        pairs.append((stem, osp.join(img_dir, fname), _find_with_ext(mask_dir, stem,
                                                                     MASK_EXTENSIONS)))
    if not pairs:
        raise FileNotFoundError(f'no images in {img_dir}')
    return pairs


def _convert_one(item: Tuple[str, str, str, str], out_dir: str, scale: float, max_deviation: int,
                 overwrite: bool, jpeg_quality: int) -> Dict:
    name, img_path, mask_path, split = item
    out_img = osp.join(out_dir, 'img_dir', split, name + '.jpg')
    out_ann = osp.join(out_dir, 'ann_dir', split, name + '.png')
    if osp.exists(out_img) and osp.exists(out_ann) and not overwrite:
        return dict(status='skipped', fixed=0, resized_mask=False)
    img = read_image(img_path, what='SUIM image')
    mask_bgr = read_image(mask_path, what='SUIM mask')
    ids, fixed = rgb_mask_to_ids(mask_bgr[..., ::-1], max_deviation, mask_path)
    resized_mask = ids.shape != img.shape[:2]
    if resized_mask:
        # A few SUIM masks do not match their image's size: align with nearest neighbour.
        ids = cv2.resize(ids, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    if scale != 1.0:
        size = (max(1, int(round(img.shape[1] * scale))), max(1, int(round(img.shape[0] * scale))))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        ids = cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)
    write_image_atomic(out_img, img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    write_image_atomic(out_ann, ids)
    return dict(status='written', fixed=fixed, resized_mask=resized_mask, name=name)


def split_train_val(names: Sequence[str],
                    num_val: int = 150,
                    seed: int = 0) -> Tuple[List[str], List[str]]:
    """The paper's split of SUIM train_val: ``num_val`` random images for validation.

    Args:
        names (Sequence[str]): train_val image names.
        num_val (int): Validation images. Defaults to 150.
        seed (int): Seed of the permutation (numpy RandomState). Defaults to 0.

    Returns:
        tuple[list[str], list[str]]: Sorted train names and sorted val names.
    """
    names = sorted(names)
    if not 0 < num_val < len(names):
        raise ValueError(f'cannot take {num_val} validation images out of {len(names)}')
    order = np.random.RandomState(seed).permutation(len(names))
    val = sorted(names[i] for i in order[:num_val])
    train = sorted(names[i] for i in order[num_val:])
    return train, val


def convert(src: str,
            out_dir: str,
            scale: float = 0.5,
            num_val: int = 150,
            seed: int = 0,
            max_deviation: int = 100,
            nproc: int = 1,
            overwrite: bool = False,
            jpeg_quality: int = 95,
            progress: bool = True) -> Dict:
    """Convert a SUIM release directory.

    Args:
        src (str): SUIM root with ``train_val/`` and ``TEST/``.
        out_dir (str): Output root.
        scale (float): Resize factor for images and masks. Defaults to 0.5.
        num_val (int): Validation images taken from train_val. Defaults to 150.
        seed (int): Split seed. Defaults to 0.
        max_deviation (int): Off-colour tolerance, see :func:`rgb_mask_to_ids`. Defaults to 100.
        nproc (int): Worker processes. Defaults to 1.
        overwrite (bool): Regenerate existing outputs. Defaults to False.
        jpeg_quality (int): JPEG quality of the written images. Defaults to 95.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: ``written``, ``skipped``, ``fixed_pixels``, ``fixed_files``, ``resized_masks``
        and the split sizes ``train``, ``val``, ``test``.
    """
    if scale <= 0:
        raise ValueError(f'scale must be > 0, got {scale}')
    items, names = [], {}
    for src_split, split in SPLITS:
        pairs = list_pairs(osp.join(src, src_split))
        names[split] = [p[0] for p in pairs]
        items += [(name, img, mask, split) for name, img, mask in pairs]
    train, val = split_train_val(names['train_val'], num_val, seed)
    worker = partial(
        _convert_one,
        out_dir=out_dir,
        scale=scale,
        max_deviation=max_deviation,
        overwrite=overwrite,
        jpeg_quality=jpeg_quality)
    rows = map_with_progress(worker, items, nproc, 'SUIM', progress)
    for split, split_names in (('train', train), ('val', val), ('test', names['test'])):
        write_text_atomic(
            osp.join(out_dir, 'splits', f'{split}.txt'),
            ''.join(n + '\n' for n in split_names),
            overwrite=overwrite)
    return dict(
        written=sum(r['status'] == 'written' for r in rows),
        skipped=sum(r['status'] == 'skipped' for r in rows),
        fixed_pixels=sum(r['fixed'] for r in rows),
        fixed_files=sum(r['fixed'] > 0 for r in rows),
        resized_masks=sorted(r['name'] for r in rows if r['resized_mask']),
        train=len(train),
        val=len(val),
        test=len(names['test']))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert SUIM to mmseg format')
    parser.add_argument('src', help='SUIM root with train_val/ and TEST/')
    parser.add_argument('out_dir', help='output root (e.g. data/suim)')
    parser.add_argument(
        '--scale',
        type=float,
        default=0.5,
        help='resize factor (default 0.5: halve, as in the paper)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=150,
        help='validation images taken from train_val (default 150)')
    parser.add_argument('--seed', type=int, default=0, help='split seed (default 0)')
    parser.add_argument(
        '--max-deviation',
        type=int,
        default=100,
        help='off-colour tolerance per channel (default 100)')
    parser.add_argument('--jpeg-quality', type=int, default=95)
    add_worker_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stats = convert_or_report(convert, args.src, args.out_dir, args.scale, args.num_val, args.seed,
                              args.max_deviation, args.nproc, args.overwrite, args.jpeg_quality)
    if stats is None:
        return 1
    print(f"SUIM -> {args.out_dir}: {stats['written']} written, {stats['skipped']} existing kept"
          f"; split train {stats['train']} / val {stats['val']} / test {stats['test']}")
    print(f"off-colour pixels fixed to the nearest code: {stats['fixed_pixels']} in "
          f"{stats['fixed_files']} masks; masks resized to their image: "
          f"{len(stats['resized_masks'])} {stats['resized_masks'][:5]}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
