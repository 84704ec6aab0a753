# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Build-time check of a segmentation data set's files: say what is missing and how to make it.

mmseg's ``BaseSegDataset`` fails on missing data with ``AssertionError: Failed to load `ann_file`
data/cityscapes_1024x512/splits/train.txt`` (or ``FileNotFoundError`` from the directory
listing), an empty image folder gives an empty data set that fails later, and a missing label
folder (e.g. coarse labels not generated yet) only fails when the first sample is loaded. The
project's data set classes call :func:`check_seg_data_present` before loading their file list and
:func:`check_seg_data_not_empty` after it, for train, val and test dataloaders alike.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmseg.datasets import BaseSegDataset

DATA_DOC = 'docs/data.md'


def format_prepare_hint(prepare_hint: Union[str, Sequence[str]]) -> str:
    """The "how to make it" part of the message.

    Args:
        prepare_hint (str | Sequence[str]): One instruction (a command or a sentence) or
            several, run in order.

    Returns:
        str: Indented lines, one per instruction, headed by where docs/data.md documents them.
    """
    steps = [prepare_hint] if isinstance(prepare_hint, str) else list(prepare_hint)
    lines = '\n'.join(f'  {step}' for step in steps)
    return f'Make it with ({DATA_DOC}; run from the repository root):\n{lines}'


def _missing_paths(dataset: BaseSegDataset) -> List[str]:
    data_root = dataset.data_root
    if data_root and not osp.isdir(data_root):
        return [f"data root '{data_root}' (data_root) does not exist"]
    missing = []
    if dataset.ann_file and not osp.exists(dataset.ann_file):
        missing.append(f"split file '{dataset.ann_file}' (ann_file) does not exist")
    for key, what in (('img_path', 'image folder'), ('seg_map_path', 'label folder')):
        folder = dataset.data_prefix.get(key)
        if folder and not osp.isdir(folder):
            missing.append(f"{what} '{folder}' (data_prefix.{key}) does not exist")
    return missing


def check_seg_data_present(dataset: BaseSegDataset, prepare_hint: Union[str,
                                                                        Sequence[str]]) -> None:
    """Raise when the data root, split file, image folder or label folder is missing.

    Args:
        dataset (BaseSegDataset): The data set, after mmseg joined ``data_root`` with
            ``ann_file`` and ``data_prefix`` (i.e. inside ``load_data_list``).
        prepare_hint (str | Sequence[str]): How to make the data (docs/data.md's command).

    Raises:
        FileNotFoundError: naming every missing path, the working directory relative paths are
            resolved against, and ``prepare_hint``.
    """
    missing = _missing_paths(dataset)
    if not missing:
        return
    name = type(dataset).__name__
    listed = '\n'.join(f'  {m}' for m in missing)
    raise FileNotFoundError(
        f'{name}: data not found (relative paths are resolved against the working directory '
        f'{os.getcwd()}):\n{listed}\n{format_prepare_hint(prepare_hint)}')


def check_seg_data_not_empty(dataset: BaseSegDataset, data_list: list,
                             prepare_hint: Union[str, Sequence[str]]) -> None:
    """Raise when the file list of an existing data folder / split file is empty.

    Args:
        dataset (BaseSegDataset): The data set (paths joined with ``data_root``).
        data_list (list): What ``load_data_list`` found.
        prepare_hint (str | Sequence[str]): How to make the data.

    Raises:
        FileNotFoundError: the split file lists nothing or the image folder has no image with
            the data set's ``img_suffix``.
    """
    if data_list:
        return
    name = type(dataset).__name__
    if dataset.ann_file:
        what = f"split file '{dataset.ann_file}' lists no image"
    else:
        what = (f"image folder '{dataset.data_prefix.get('img_path')}' has no image ending in "
                f"'{dataset.img_suffix}'")
    raise FileNotFoundError(f'{name}: no data: {what}\n{format_prepare_hint(prepare_hint)}')


def check_no_empty_files(dataset: BaseSegDataset, data_list: list) -> None:
    """Raise when an image or label file of the list is empty (0 bytes).

    An empty file would otherwise fail only when its sample is loaded, with OpenCV's
    ``!buf.empty()`` assertion and no file name. One ``stat`` per file at build time.

    Args:
        dataset (BaseSegDataset): The data set.
        data_list (list): What ``load_data_list`` found (``img_path``, ``seg_map_path``).

    Raises:
        ValueError: naming every empty file (the first 10) and how many there are.
    """
    empty = [
        path for info in data_list for key in ('img_path', 'seg_map_path')
        if (path := info.get(key)) and osp.isfile(path) and osp.getsize(path) == 0
    ]
    if empty:
        shown = '\n  '.join(empty[:10])
        raise ValueError(f'{type(dataset).__name__}: {len(empty)} empty file(s) (0 bytes), e.g.:'
                         f'\n  {shown}\nRe-copy or re-convert them.')


def resolve_prepare_hint(prepare_hint: Optional[Union[str, Sequence[str]]],
                         default: Union[str, Sequence[str]]) -> Union[str, Sequence[str]]:
    """The config's ``prepare_hint`` or the data set class's default.

    Args:
        prepare_hint (str | Sequence[str] | None): Given in the dataset config.
        default (str | Sequence[str]): The class's default instructions.

    Returns:
        str | Sequence[str]: ``prepare_hint`` if given, else ``default``.

    Raises:
        ValueError: ``prepare_hint`` is neither None, a non-empty string nor a non-empty
            sequence of non-empty strings.
    """
    if prepare_hint is None:
        return default
    steps = [prepare_hint] if isinstance(prepare_hint, str) else prepare_hint
    if not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise ValueError('prepare_hint must be a non-empty string or a list of them (the '
                         f'commands that make the data set), got {prepare_hint!r}')
    return prepare_hint


class DataPresenceCheckMixin:
    """``prepare_hint`` and the data-presence checks around mmseg's file list, for data sets.

    Put it before the mmseg data set class in the bases (``class X(DataPresenceCheckMixin,
    BaseSegDataset)``) and set :attr:`PREPARE_HINT`: :meth:`load_data_list` calls
    :func:`check_seg_data_present` before mmseg's listing and :func:`check_seg_data_not_empty`
    after it.

    Args:
        prepare_hint (str | Sequence[str], optional): How to make the data when it is missing
            (docs/data.md's commands, in order). Defaults to the class's :attr:`PREPARE_HINT`.
        *args, **kwargs: Passed to the mmseg data set class.
    """
    PREPARE_HINT: Union[str, Sequence[str]] = ()

    def __init__(self,
                 *args,
                 prepare_hint: Optional[Union[str, Sequence[str]]] = None,
                 **kwargs) -> None:
        # set before the base class's __init__, which lists the files (full_init)
        self.prepare_hint = resolve_prepare_hint(prepare_hint, self.PREPARE_HINT)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """mmseg's file list, after checking that the data exists.

        Returns:
            list[dict]: One data info per image (``img_path``, ``seg_map_path``, ...).

        Raises:
            FileNotFoundError: a data folder / split file is missing or lists no image.
            ValueError: an image or label file is empty.
        """
        check_seg_data_present(self, self.prepare_hint)
        data_list = super().load_data_list()
        check_seg_data_not_empty(self, data_list, self.prepare_hint)
        check_no_empty_files(self, data_list)
        return data_list
