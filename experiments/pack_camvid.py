# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Pack CamVid into a small folder that travels with the repository to a GPU machine.

Images become JPEG (quality ``--quality``, default 95), fine labels stay lossless PNG, and the
coarse labels of the paper's protocol (``tools/dataset_converters/make_coarse_labels.py``,
erosion ``--erode``, default 12) are made from the fine ones, so the GPU machine needs nothing but
this folder::

    DST/train/*.jpg  DST/trainannot/*.png              367 images, fine labels (void = 11)
    DST/val/*.jpg    DST/valannot/*.png                101 images, fine labels (void = 11)
    DST/coarse_n<N>/trainannot/*.png, valannot/*.png   coarse labels (void = 255)
    DST/pack.json                                       what was packed, sizes

The CamVid data set class reads it back with ``img_suffix='.jpg'`` (see
``configs/camvid_gpu/camvid_gpu_schedule.py``). Example::

    python experiments/pack_camvid.py data/camvid data/camvid_pack

The folder must stay under ``--max-mb`` (default 40 MB) so that it fits the device tool's
transfer limit beside the code: the command fails (and says by how much) if it does not.
Existing files are rewritten only with ``--overwrite``; every file is written atomically.
"""
import argparse
import json
import os
import os.path as osp
import sys
from functools import partial
from typing import Dict, List, Optional

import cv2

# the converters this script builds on (tools/dataset_converters import each other by module name)
sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'dataset_converters'))
import converter_utils  # noqa: E402
from make_coarse_labels import convert as make_coarse_labels  # noqa: E402

SPLITS = (('train', 'trainannot'), ('val', 'valannot'))
CAMVID_VOID = 11


def _pack_one(name: str, src: str, dst: str, quality: int, overwrite: bool) -> None:
    """Write one image as JPEG and its fine label as PNG.

    ``name`` is ``'<image dir>/<label dir>/<stem>'`` (e.g. ``'train/trainannot/0001TP_006690'``).
    """
    img_dir, ann_dir, stem = name.split('/')
    out_img = osp.join(dst, img_dir, stem + '.jpg')
    out_ann = osp.join(dst, ann_dir, stem + '.png')
    if overwrite or not osp.exists(out_img):
        image = converter_utils.read_image(osp.join(src, img_dir, stem + '.png'))
        converter_utils.write_image_atomic(out_img, image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if overwrite or not osp.exists(out_ann):
        label = converter_utils.read_label(osp.join(src, ann_dir, stem + '.png'))
        converter_utils.write_image_atomic(out_ann, label, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def folder_size(path: str) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(osp.getsize(osp.join(root, f)) for root, _, files in os.walk(path) for f in files)


def pack_camvid(src: str,
                dst: str,
                quality: int = 95,
                erode: int = 12,
                limit: Optional[int] = None,
                max_mb: float = 40.0,
                nproc: int = 1,
                overwrite: bool = False,
                progress: bool = True) -> Dict:
    """Pack CamVid (SegNet layout) into ``dst``: JPEG images, PNG fine and coarse labels.

    Args:
        src (str): CamVid root with ``train/``, ``trainannot/``, ``val/``, ``valannot/`` (PNG).
        dst (str): Output folder.
        quality (int): JPEG quality, 1..100. Defaults to 95.
        erode (int): Erosion N of the coarse labels (``coarse_n<N>/``). Defaults to 12.
        limit (int, optional): Pack only the first ``limit`` images (by name) of each split
            (tests). Defaults to None (all).
        max_mb (float): Fail if the packed folder is larger (MB = 10^6 bytes). Defaults to 40.
        nproc (int): Worker processes. Defaults to 1.
        overwrite (bool): Rewrite existing files. Defaults to False.
        progress (bool): Show progress bars. Defaults to True.

    Returns:
        dict: The content of ``pack.json``: images per split, erosion, quality, size in bytes.

    Raises:
        FileNotFoundError: A split folder of ``src`` is missing or empty.
        ValueError: Bad arguments, or the packed folder exceeds ``max_mb``.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f'--quality must be in 1..100, got {quality}')
    if limit is not None and limit < 1:
        raise ValueError(f'--limit must be >= 1, got {limit}')
    names: List[str] = []
    counts = {}
    for img_dir, ann_dir in SPLITS:
        folder = osp.join(src, img_dir)
        if not osp.isdir(folder):
            raise FileNotFoundError(f'CamVid split folder not found: {folder} (expected the '
                                    'SegNet layout train/, trainannot/, val/, valannot/)')
        stems = sorted(f[:-4] for f in os.listdir(folder) if f.endswith('.png'))
        if not stems:
            raise FileNotFoundError(f'no PNG images in {folder}')
        stems = stems[:limit] if limit is not None else stems
        counts[img_dir] = len(stems)
        names += [f'{img_dir}/{ann_dir}/{s}' for s in stems]
    worker = partial(_pack_one, src=src, dst=dst, quality=quality, overwrite=overwrite)
    converter_utils.map_with_progress(worker, names, nproc, 'pack CamVid', progress)
    coarse = {}
    for _, ann_dir in SPLITS:
        stats = make_coarse_labels(
            osp.join(dst, ann_dir),
            osp.join(dst, f'coarse_n{erode}', ann_dir),
            erode=erode,
            ignore_values=(CAMVID_VOID, 255),
            nproc=nproc,
            overwrite=overwrite,
            progress=progress)
        coarse[ann_dir] = dict(
            labelled_fraction=round(stats['coarse_fraction'], 4),
            disagreeing_with_fine=round(stats['coarse_error'], 5))
    manifest = dict(
        source=osp.abspath(src),
        images=counts,
        jpeg_quality=quality,
        coarse_erode=erode,
        coarse=coarse)
    manifest_path = osp.join(dst, 'pack.json')
    converter_utils.write_text_atomic(
        manifest_path, json.dumps(manifest, indent=1) + '\n', overwrite=True)
    size = folder_size(dst)
    manifest['bytes'] = size
    if size > max_mb * 1e6:
        raise ValueError(f'packed folder {dst} is {size / 1e6:.1f} MB, over --max-mb {max_mb}; '
                         'lower --quality')
    return manifest


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='CamVid root (SegNet layout, PNG), e.g. data/camvid')
    p.add_argument('dst', help='output folder, e.g. data/camvid_pack')
    p.add_argument('--quality', type=int, default=95, help='JPEG quality (default: 95)')
    p.add_argument('--erode', type=int, default=12, help='coarse-label erosion N (default: 12)')
    p.add_argument(
        '--limit', type=int, default=None, help='only the first N images of each split (tests)')
    p.add_argument(
        '--max-mb', type=float, default=40.0, help='fail if the folder is larger (default: 40)')
    p.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    p.add_argument('--overwrite', action='store_true', help='rewrite existing files')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = pack_camvid(args.src, args.dst, args.quality, args.erode, args.limit,
                               args.max_mb, args.nproc, args.overwrite)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f"packed {manifest['images']} into {args.dst}: {manifest['bytes'] / 1e6:.1f} MB "
          f'(JPEG q{args.quality}, coarse labels N={args.erode})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
