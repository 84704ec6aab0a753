# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Simulate coarse annotations from fine label maps (the paper's protocol).

For every class region of a fine label map:

1. erode it by N pixels (``--erode``, default 12): a pixel survives if no pixel with another label
   (including void) lies within Euclidean distance N; the image border does not erode;
2. approximate each remaining connected component (outer contour and holes) by a polygon with
   Douglas-Peucker (``cv2.approxPolyDP``, tolerance ``--epsilon`` pixels, default N / 4);
3. fill the polygons with the class id; everything else becomes ``--out-ignore`` (255).

Works for any dataset whose labels are single-channel PNG class ids. Input void labels are given
with ``--ignore-index`` (e.g. ``11 255`` for CamVid); they are treated as "not a class" (no
polygon, but neighbouring classes are eroded away from them).

Example (CamVid, written outside git under ``data/``)::

    python tools/dataset_converters/make_coarse_labels.py \\
        data/camvid/trainannot data/camvid_coarse/n12/trainannot \\
        --erode 12 --ignore-index 11 255 --nproc 2

``--protocol original`` makes them as the thesis's own code does instead (square 25 x 25 erosion
for N = 12, ``RETR_TREE`` contours, Douglas-Peucker at 0.005 x arc length, later classes
overwrite earlier ones); both generators live in
``mmseg_spixreg/datasets/transforms/coarsen_labels.py``, shared with the ``CoarsenLabels``
pipeline step (which the original protocol runs on the fly, after the random crop).

Reports the labelled-pixel fraction before (fine) and after (coarse), and the fraction of coarse
labels that disagree with the fine labels (polygon simplification can cut corners). Existing
outputs are kept (and only counted) unless ``--overwrite``; every file is written to a temporary
name in the target directory and moved into place with ``os.replace`` (no half-written files).
"""
import argparse
import os
import os.path as osp
import sys
from functools import partial
from typing import Dict, List, Optional, Sequence

import numpy as np

from converter_utils import (add_worker_args, convert_or_report, map_with_progress, read_label,
                             write_image_atomic)
from mmseg_spixreg.datasets.transforms.coarsen_labels import COARSE_PROTOCOLS, coarsen_labels


def make_coarse(fine: np.ndarray,
                erode: int = 12,
                epsilon: Optional[float] = None,
                ignore_values: Sequence[int] = (255, ),
                out_ignore: int = 255,
                protocol: str = 'paper') -> np.ndarray:
    """Coarse label map from a fine one (``mmseg_spixreg``'s ``coarsen_labels``).

    Args:
        fine (np.ndarray): Fine label map, shape (H, W), integer class ids.
        erode (int): Erosion distance N in pixels (>= 0). Defaults to 12.
        epsilon (float, optional): Douglas-Peucker tolerance in pixels of the 'paper' protocol;
            None for ``N / 4`` (0 keeps the eroded contour exactly). Defaults to None.
        ignore_values (Sequence[int]): Input labels that are void. Defaults to (255, ).
        out_ignore (int): Label written where there is no polygon. Defaults to 255.
        protocol (str): 'paper' (round erosion, the thesis text) or 'original' (the thesis's
            own code). Defaults to 'paper'.

    Returns:
        np.ndarray: Coarse label map, shape (H, W), dtype of ``fine`` (uint8 for PNG input).
    """
    return coarsen_labels(fine, protocol, erode, epsilon, ignore_values, out_ignore)


def _process_one(rel_path: str,
                 in_dir: str,
                 out_dir: str,
                 in_suffix: str,
                 out_suffix: Optional[str],
                 erode: int,
                 epsilon: Optional[float],
                 ignore_values: Sequence[int],
                 out_ignore: int,
                 overwrite: bool,
                 protocol: str = 'paper') -> Dict:
    src = osp.join(in_dir, rel_path)
    rel_out = rel_path
    if out_suffix is not None:
        rel_out = rel_path[:-len(in_suffix)] + out_suffix
    dst = osp.join(out_dir, rel_out)
    fine = read_label(src)
    fine_labelled = ~np.isin(fine, list(ignore_values))
    if osp.exists(dst) and not overwrite:
        coarse = read_label(dst)
        if coarse.shape != fine.shape:
            raise ValueError(f'existing output {dst} has shape {coarse.shape}, fine label '
                             f'{src} has {fine.shape}; use --overwrite to regenerate')
        status = 'skipped'
    else:
        coarse = make_coarse(fine, erode, epsilon, ignore_values, out_ignore, protocol)
        write_image_atomic(dst, coarse)
        status = 'written'
    coarse_labelled = coarse != out_ignore
    return dict(
        status=status,
        pixels=int(fine.size),
        fine_labelled=int(np.count_nonzero(fine_labelled)),
        coarse_labelled=int(np.count_nonzero(coarse_labelled)),
        coarse_wrong=int(np.count_nonzero(coarse_labelled & (coarse != fine))))


def find_labels(in_dir: str, suffix: str) -> List[str]:
    """Label files under ``in_dir`` (recursive) ending with ``suffix``, relative, sorted.

    Args:
        in_dir (str): Directory of fine labels.
        suffix (str): File name ending, e.g. ``.png`` or ``_gtFine_labelTrainIds.png``.

    Returns:
        list[str]: Paths relative to ``in_dir``.
    """
    if not osp.isdir(in_dir):
        raise FileNotFoundError(f'input label directory not found: {in_dir}')
    found = []
    for root, _, files in os.walk(in_dir):
        for name in files:
            if name.endswith(suffix) and not name.startswith('.'):
                found.append(osp.relpath(osp.join(root, name), in_dir))
    return sorted(found)


def check_output_args(in_dir: str, out_dir: str, out_ignore: int) -> None:
    """Refuse an output that would silently be wrong.

    Args:
        in_dir (str): Fine label directory.
        out_dir (str): Output directory: neither ``in_dir`` nor inside it (the fine labels
            would be overwritten, or without ``--overwrite`` all be "existing kept" and used as
            coarse ones; outputs inside ``in_dir`` become inputs of the next run).
        out_ignore (int): Must fit the uint8 label PNG (0..255; 256 was written as 0, making
            every unlabelled pixel class 0).

    Raises:
        ValueError: Naming the value.
    """
    if isinstance(out_ignore, bool) or not isinstance(out_ignore, int) \
            or not 0 <= out_ignore <= 255:
        raise ValueError(f'--out-ignore must be an int in 0..255 (label maps are written as '
                         f'uint8 PNGs), got {out_ignore!r}')
    src, dst = osp.realpath(in_dir), osp.realpath(out_dir)
    if osp.commonpath([src, dst]) == src:
        raise ValueError(f'the output directory {out_dir} is the input directory {in_dir} or '
                         'inside it: the coarse labels would replace the fine ones (or the fine '
                         'ones be kept as "coarse"); choose another output directory')


def convert(in_dir: str,
            out_dir: str,
            erode: int = 12,
            epsilon: Optional[float] = None,
            ignore_values: Sequence[int] = (255, ),
            out_ignore: int = 255,
            suffix: str = '.png',
            out_suffix: Optional[str] = None,
            nproc: int = 1,
            overwrite: bool = False,
            progress: bool = True,
            protocol: str = 'paper') -> Dict:
    """Make coarse labels for every fine label file of a directory.

    Args:
        in_dir (str): Fine label directory (searched recursively).
        out_dir (str): Output directory (same relative layout).
        erode (int): Erosion N in pixels. Defaults to 12.
        epsilon (float, optional): Douglas-Peucker tolerance; None for N / 4. Defaults to None.
        ignore_values (Sequence[int]): Void labels of the input. Defaults to (255, ).
        out_ignore (int): Ignore label of the output. Defaults to 255.
        suffix (str): Input file name ending. Defaults to '.png'.
        out_suffix (str, optional): Replaces ``suffix`` in output names; None keeps names.
            Defaults to None.
        nproc (int): Worker processes. Defaults to 1.
        overwrite (bool): Regenerate existing outputs. Defaults to False.
        progress (bool): Show a tqdm progress bar. Defaults to True.
        protocol (str): 'paper' or 'original' (see :func:`make_coarse`). Defaults to 'paper'.

    Returns:
        dict: ``files``, ``written``, ``skipped``, ``pixels``, ``fine_fraction``,
        ``coarse_fraction`` (labelled pixels / all pixels) and ``coarse_error`` (coarse-labelled
        pixels whose label differs from the fine one / coarse-labelled pixels).
    """
    check_output_args(in_dir, out_dir, out_ignore)
    files = find_labels(in_dir, suffix)
    if not files:
        raise FileNotFoundError(f'no label files ending with {suffix!r} under {in_dir}')
    worker = partial(
        _process_one,
        in_dir=in_dir,
        out_dir=out_dir,
        in_suffix=suffix,
        out_suffix=out_suffix,
        erode=erode,
        epsilon=epsilon,
        ignore_values=tuple(int(v) for v in ignore_values),
        out_ignore=out_ignore,
        overwrite=overwrite,
        protocol=protocol)
    rows = map_with_progress(worker, files, nproc, f'coarse labels N={erode}', progress)
    pixels = sum(r['pixels'] for r in rows)
    coarse_labelled = sum(r['coarse_labelled'] for r in rows)
    return dict(
        files=len(rows),
        written=sum(r['status'] == 'written' for r in rows),
        skipped=sum(r['status'] == 'skipped' for r in rows),
        pixels=pixels,
        fine_fraction=sum(r['fine_labelled'] for r in rows) / pixels,
        coarse_fraction=coarse_labelled / pixels,
        coarse_error=(sum(r['coarse_wrong']
                          for r in rows) / coarse_labelled if coarse_labelled else 0.0))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Coarse labels from fine ones: erode each class region by N px, '
        'Douglas-Peucker polygons, the rest ignore.')
    parser.add_argument('in_dir', help='directory of fine label PNGs (searched recursively)')
    parser.add_argument('out_dir', help='output directory (same relative layout)')
    parser.add_argument(
        '--erode', '-n', type=int, default=12, help='erosion N in pixels (default: 12)')
    parser.add_argument(
        '--epsilon',
        type=float,
        default=None,
        help='Douglas-Peucker tolerance in pixels (default: N / 4)')
    parser.add_argument(
        '--ignore-index',
        type=int,
        nargs='+',
        default=[255],
        help='void label value(s) of the input (default: 255; CamVid: 11 255)')
    parser.add_argument(
        '--out-ignore',
        type=int,
        default=255,
        help='ignore label written to the output (default: 255)')
    parser.add_argument('--suffix', default='.png', help='input file ending (default: .png)')
    parser.add_argument(
        '--out-suffix',
        default=None,
        help='replace --suffix by this in output names (default: keep names)')
    add_worker_args(parser)
    parser.add_argument(
        '--protocol',
        choices=COARSE_PROTOCOLS,
        default='paper',
        help="'paper' (default: the thesis text, round erosion) or 'original' (the thesis's own "
        'code: square erosion, later classes overwrite; no --epsilon)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.protocol == 'original' and args.epsilon is not None:
        print(
            "error: --epsilon does not apply to --protocol original (its Douglas-Peucker "
            "tolerance is 0.005 x each contour's arc length)",
            file=sys.stderr)
        return 1
    stats = convert_or_report(
        convert,
        args.in_dir,
        args.out_dir,
        args.erode,
        args.epsilon,
        args.ignore_index,
        args.out_ignore,
        args.suffix,
        args.out_suffix,
        args.nproc,
        args.overwrite,
        protocol=args.protocol)
    if stats is None:
        return 1
    print(f"{stats['files']} label maps: {stats['written']} written, {stats['skipped']} "
          'existing kept (use --overwrite to regenerate)'
          if stats['skipped'] else f"{stats['files']} label maps written to {args.out_dir}")
    print(f"labelled pixels: fine {100 * stats['fine_fraction']:.2f}% -> coarse (N={args.erode}) "
          f"{100 * stats['coarse_fraction']:.2f}%; coarse labels disagreeing with fine: "
          f"{100 * stats['coarse_error']:.3f}%")
    return 0


if __name__ == '__main__':
    sys.exit(main())
