# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Prepare Cityscapes for the paper's fine / coarse experiments (no cityscapesscripts needed).

Input (the official release, ``leftImg8bit_trainvaltest``, ``gtFine_trainvaltest``,
``gtCoarse``)::

    <src>/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    <src>/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png    (or _gtFine_polygons.json)
    <src>/gtCoarse/train/<city>/<stem>_gtCoarse_labelIds.png      (or _gtCoarse_polygons.json)

Label ids are mapped to the 19 train ids (255 = ignore) with the table of cityscapesscripts'
``labels.py`` (copied below). When a ``*_labelIds.png`` is missing, the ``*_polygons.json`` is
rasterised the way cityscapesscripts' ``json2labelImg`` does (objects in file order, ``deleted``
objects skipped, ``...group`` labels mapped to their class) with ``cv2.fillPoly``.

Output (``--out-dir``), everything resized to ``--width`` x ``--height`` (default 1024x512;
images with area interpolation, labels nearest)::

    leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    gtFine/{train,val}/<city>/<stem>_gtFine_labelTrainIds.png
    gtCoarse/train/<city>/<stem>_gtCoarse_labelTrainIds.png
    splits/train.txt  splits/val.txt  splits/test.txt       (lines: <city>/<stem>)

The paper's split: the train cities Aachen, Monchengladbach, Stuttgart and Weimar are held out of
training as validation set (``splits/val.txt``, under ``leftImg8bit/train``; evaluated with fine
labels), the other train cities are ``splits/train.txt``, and the official val set is the test
set (``splits/test.txt``, under ``leftImg8bit/val``).

Example::

    python tools/dataset_converters/cityscapes_coarse.py /path/to/cityscapes \\
        data/cityscapes_1024x512
"""
import argparse
import json
import os
import os.path as osp
import sys
from functools import partial
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from converter_utils import (add_worker_args, convert_or_report, map_with_progress, read_image,
                             read_label, write_image_atomic, write_text_atomic)

# (name, id, trainId) from cityscapesscripts/helpers/labels.py.
CITYSCAPES_LABELS = (('unlabeled', 0, 255), ('ego vehicle', 1, 255), ('rectification border', 2,
                                                                      255), ('out of roi', 3, 255),
                     ('static', 4, 255), ('dynamic', 5, 255), ('ground', 6, 255), ('road', 7, 0),
                     ('sidewalk', 8, 1), ('parking', 9, 255), ('rail track', 10, 255),
                     ('building', 11, 2), ('wall', 12, 3), ('fence', 13, 4),
                     ('guard rail', 14, 255), ('bridge', 15, 255), ('tunnel', 16, 255),
                     ('pole', 17, 5), ('polegroup', 18, 255), ('traffic light', 19, 6),
                     ('traffic sign', 20, 7), ('vegetation', 21, 8), ('terrain', 22, 9),
                     ('sky', 23, 10), ('person', 24, 11), ('rider', 25, 12), ('car', 26, 13),
                     ('truck', 27, 14), ('bus', 28, 15), ('caravan', 29, 255), ('trailer', 30, 255),
                     ('train', 31, 16), ('motorcycle', 32, 17), ('bicycle', 33,
                                                                 18), ('license plate', -1, 255))
NAME_TO_ID = {name: label_id for name, label_id, _ in CITYSCAPES_LABELS}
# Lookup table label id -> train id for uint8 label maps (unknown ids -> 255).
ID_TO_TRAINID = np.full(256, 255, dtype=np.uint8)
for _, _id, _train_id in CITYSCAPES_LABELS:
    if _id >= 0:
        ID_TO_TRAINID[_id] = _train_id

VAL_CITIES = ('aachen', 'monchengladbach', 'stuttgart', 'weimar')


def polygons_to_label_ids(json_path: str) -> np.ndarray:
    """Rasterise a Cityscapes ``*_polygons.json`` into a label-id map.

    Args:
        json_path (str): The polygons file.

    Returns:
        np.ndarray: Label ids, shape (imgHeight, imgWidth), uint8; 0 (unlabeled) where no
        polygon is drawn.

    Raises:
        ValueError: For an unknown label name (naming the file).
    """
    with open(json_path) as f:
        ann = json.load(f)
    label = np.zeros((ann['imgHeight'], ann['imgWidth']), np.uint8)
    for obj in ann['objects']:
        if obj.get('deleted'):
            continue
        name = obj['label']
        if name not in NAME_TO_ID and name.endswith('group'):
            name = name[:-len('group')]
        if name not in NAME_TO_ID:
            raise ValueError(f'unknown Cityscapes label {obj["label"]!r} in {json_path}')
        label_id = NAME_TO_ID[name]
        if label_id < 0:
            continue
        polygon = np.round(np.asarray(obj['polygon'], np.float64)).astype(np.int32)
        cv2.fillPoly(label, [polygon.reshape(-1, 1, 2)], int(label_id))
        # PIL's polygon fill (used by cityscapesscripts) also draws the outline.
        cv2.polylines(label, [polygon.reshape(-1, 1, 2)], True, int(label_id))
    return label


def load_train_ids(label_ids_png: str) -> np.ndarray:
    """Train-id map from a ``*_labelIds.png``, or from the sibling ``*_polygons.json``.

    Args:
        label_ids_png (str): Path of the ``*_labelIds.png`` (need not exist if the json does).

    Returns:
        np.ndarray: Train ids, shape (H, W), uint8 (255 = ignore).
    """
    if osp.isfile(label_ids_png):
        return ID_TO_TRAINID[read_label(label_ids_png)]
    json_path = label_ids_png[:-len('labelIds.png')] + 'polygons.json'
    if osp.isfile(json_path):
        return ID_TO_TRAINID[polygons_to_label_ids(json_path)]
    raise FileNotFoundError(f'neither {label_ids_png} nor {json_path} exists')


def _job(item: Tuple[str, str, str], src: str, out_dir: str, size: Tuple[int, int],
         overwrite: bool) -> Dict:
    """Convert one image with its fine and (for train) coarse labels."""
    split, city, stem = item
    jobs = [(osp.join(src, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'),
             osp.join(out_dir, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'), 'image'),
            (osp.join(src, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'),
             osp.join(out_dir, 'gtFine', split, city, f'{stem}_gtFine_labelTrainIds.png'), 'label')]
    if split == 'train':
        jobs.append((osp.join(src, 'gtCoarse', split, city, f'{stem}_gtCoarse_labelIds.png'),
                     osp.join(out_dir, 'gtCoarse', split, city,
                              f'{stem}_gtCoarse_labelTrainIds.png'), 'label'))
    written = 0
    for src_path, dst_path, kind in jobs:
        if osp.exists(dst_path) and not overwrite:
            continue
        if kind == 'image':
            out = cv2.resize(
                read_image(src_path, what='Cityscapes image'), size, interpolation=cv2.INTER_AREA)
        else:
            out = cv2.resize(load_train_ids(src_path), size, interpolation=cv2.INTER_NEAREST)
        write_image_atomic(dst_path, out)
        written += 1
    return dict(written=written, total=len(jobs))


def list_images(src: str, split: str) -> List[Tuple[str, str, str]]:
    """(split, city, stem) of every ``*_leftImg8bit.png`` of a split.

    Args:
        src (str): Cityscapes root.
        split (str): 'train' or 'val'.

    Returns:
        list[tuple[str, str, str]]: Sorted.
    """
    root = osp.join(src, 'leftImg8bit', split)
    if not osp.isdir(root):
        raise FileNotFoundError(f'Cityscapes image directory not found: {root}')
    items = []
    for city in sorted(os.listdir(root)):
        if not osp.isdir(osp.join(root, city)):
            continue
        for fname in sorted(os.listdir(osp.join(root, city))):
            if fname.endswith('_leftImg8bit.png'):
                items.append((split, city, fname[:-len('_leftImg8bit.png')]))
    if not items:
        raise FileNotFoundError(f'no *_leftImg8bit.png under {root}')
    return items


def convert(src: str,
            out_dir: str,
            width: int = 1024,
            height: int = 512,
            nproc: int = 1,
            overwrite: bool = False,
            val_cities=VAL_CITIES,
            progress: bool = True,
            limit: Optional[int] = None) -> Dict:
    """Convert Cityscapes train + val (images, fine and coarse train ids) and write splits.

    Args:
        src (str): Cityscapes root.
        out_dir (str): Output root.
        width (int): Output width. Defaults to 1024.
        height (int): Output height. Defaults to 512.
        nproc (int): Worker processes. Defaults to 1.
        overwrite (bool): Regenerate existing outputs. Defaults to False.
        val_cities (Sequence[str]): Train cities held out for validation. Defaults to the
            paper's Aachen, Monchengladbach, Stuttgart, Weimar.
        progress (bool): Show a progress bar. Defaults to True.
        limit (int, optional): Only the first ``limit`` images per split (quick checks).

    Returns:
        dict: ``files_written``, ``files_total`` and split sizes ``train``, ``val``, ``test``.
    """
    train_items = list_images(src, 'train')[:limit]
    test_items = list_images(src, 'val')[:limit]
    items = train_items + test_items
    worker = partial(_job, src=src, out_dir=out_dir, size=(width, height), overwrite=overwrite)
    rows = map_with_progress(worker, items, nproc, 'Cityscapes', progress)
    val_cities = set(val_cities)
    splits = dict(
        train=[f'{c}/{s}' for _, c, s in train_items if c not in val_cities],
        val=[f'{c}/{s}' for _, c, s in train_items if c in val_cities],
        test=[f'{c}/{s}' for _, c, s in test_items])
    for name, lines in splits.items():
        write_text_atomic(
            osp.join(out_dir, 'splits', f'{name}.txt'),
            ''.join(line + '\n' for line in lines),
            overwrite=overwrite)
    return dict(
        files_written=sum(r['written'] for r in rows),
        files_total=sum(r['total'] for r in rows),
        **{
            k: len(v)
            for k, v in splits.items()
        })


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Cityscapes -> 1024x512 images, fine + coarse labelTrainIds, paper splits')
    parser.add_argument('src', help='Cityscapes root (leftImg8bit/, gtFine/, gtCoarse/)')
    parser.add_argument('out_dir', help='output root, e.g. data/cityscapes_1024x512')
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--height', type=int, default=512)
    add_worker_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stats = convert_or_report(convert, args.src, args.out_dir, args.width, args.height, args.nproc,
                              args.overwrite)
    if stats is None:
        return 1
    print(f"Cityscapes -> {args.out_dir}: {stats['files_written']} of {stats['files_total']} "
          f'files written (others existed; --overwrite regenerates); split train '
          f"{stats['train']} / val {stats['val']} / test {stats['test']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
