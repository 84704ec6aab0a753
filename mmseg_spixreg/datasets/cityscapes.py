# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .missing_data import DataPresenceCheckMixin


@DATASETS.register_module()
class SpixCityscapesDataset(DataPresenceCheckMixin, CityscapesDataset):
    """mmseg's ``CityscapesDataset`` that says how to make the data when it is missing.

    Reads the output of ``tools/dataset_converters/cityscapes_coarse.py`` (1024x512,
    ``*_gtFine_labelTrainIds.png`` / ``*_gtCoarse_labelTrainIds.png``, the paper's split in
    ``splits/{train,val,test}.txt``), exactly as ``CityscapesDataset`` (fine labels by default;
    the coarse configs set ``seg_map_suffix='_gtCoarse_labelTrainIds.png'``). On a machine
    without the converted data, mmseg stops with ``AssertionError: Failed to load `ann_file`
    data/cityscapes_1024x512/splits/train.txt``; this class raises ``FileNotFoundError`` naming
    every missing path and ``prepare_hint``.

    Args:
        prepare_hint (str | Sequence[str], optional): How to make the data when it is missing
            (docs/data.md's commands, in order). Defaults to the converter command
            (:attr:`PREPARE_HINT`).
        **kwargs: Passed to :class:`mmseg.datasets.CityscapesDataset` (``img_suffix``,
            ``seg_map_suffix``, ``data_root``, ``ann_file``, ...).
    """
    PREPARE_HINT = ('python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT '
                    'data/cityscapes_1024x512')
