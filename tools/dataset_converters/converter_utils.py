# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Helpers shared by the dataset converters: checked reads, atomic writes, the arguments and error
report of their command lines."""
import os
import os.path as osp
import sys
from multiprocessing import Pool
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm


def read_image(path: str, flag: int = cv2.IMREAD_COLOR, what: str = 'image') -> np.ndarray:
    """Read an image with OpenCV, with errors that name the file.

    Args:
        path (str): File to read.
        flag (int): ``cv2.imread`` flag. Defaults to ``cv2.IMREAD_COLOR`` (BGR, uint8).
        what (str): What the file is, for messages. Defaults to 'image'.

    Returns:
        np.ndarray: The decoded array, (H, W, 3) BGR or (H, W) depending on ``flag``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be decoded.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    array = cv2.imread(path, flag)
    if array is None:
        raise ValueError(f'cannot decode {what} file: {path}')
    return array


def read_label(path: str) -> np.ndarray:
    """Read a single-channel label map (class ids), shape (H, W).

    Args:
        path (str): Label PNG.

    Returns:
        np.ndarray: Label map, shape (H, W).
    """
    label = read_image(path, cv2.IMREAD_UNCHANGED, what='label')
    if label.ndim != 2:
        raise ValueError(f'label file must be single-channel class ids, got shape '
                         f'{label.shape}: {path}')
    return label


def write_image_atomic(path: str,
                       array: np.ndarray,
                       params: Optional[Sequence[int]] = None) -> None:
    """Write an image atomically: temporary file in the same directory, then ``os.replace``.

    An interrupted run (Ctrl-C, crash) never leaves a half-written file under ``path``.

    Args:
        path (str): Destination; its extension selects the format.
        array (np.ndarray): Image, (H, W) or (H, W, 3) BGR.
        params (Sequence[int], optional): ``cv2.imwrite`` parameters. Defaults to None.
    """
    directory = osp.dirname(path) or '.'
    os.makedirs(directory, exist_ok=True)
    ext = osp.splitext(path)[1]
    tmp = osp.join(directory, f'.{osp.basename(path)}.tmp{os.getpid()}{ext}')
    try:
        if not cv2.imwrite(tmp, array, list(params or [])):
            raise OSError(f'cv2.imwrite failed for {path}')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str, overwrite: bool = False) -> bool:
    """Write a text file atomically; an identical existing file is left alone.

    Args:
        path (str): Destination.
        text (str): Content.
        overwrite (bool): Replace an existing file with different content. Defaults to False.

    Returns:
        bool: True if the file was (re)written, False if it already had this content.

    Raises:
        FileExistsError: The file exists with other content and ``overwrite`` is False.
    """
    if osp.exists(path):
        with open(path) as f:
            if f.read() == text:
                return False
        if not overwrite:
            raise FileExistsError(f'{path} exists with different content; use --overwrite')
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return True


def map_with_progress(worker: Callable,
                      items: Sequence,
                      nproc: int,
                      desc: str,
                      progress: bool = True) -> List:
    """Apply ``worker`` to every item (``nproc`` > 1: a process pool) with a tqdm progress bar.

    Returns:
        list: The workers' results (in completion order when ``nproc`` > 1).
    """
    rows = []
    with tqdm(total=len(items), desc=desc, unit='img', disable=not progress) as bar:
        if nproc > 1:
            with Pool(nproc) as pool:
                for row in pool.imap_unordered(worker, items, chunksize=4):
                    rows.append(row)
                    bar.update()
        else:
            for item in items:
                rows.append(worker(item))
                bar.update()
    return rows


def add_worker_args(parser) -> None:
    """Add ``--nproc`` (worker processes, default all cores) and ``--overwrite`` to ``parser``."""
    parser.add_argument(
        '--nproc',
        type=int,
        default=os.cpu_count() or 1,
        help='worker processes (default: all cores)')
    parser.add_argument(
        '--overwrite', action='store_true', help='regenerate outputs that already exist')


def convert_or_report(convert: Callable, *args, **kwargs) -> Optional[dict]:
    """``convert(*args, **kwargs)``, or None after printing ``error: ...`` to stderr where the input
    is missing or wrong or an output exists (FileNotFoundError, FileExistsError, ValueError)."""
    try:
        return convert(*args, **kwargs)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return None
