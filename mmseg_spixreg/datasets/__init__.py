# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Datasets. Cityscapes (fine or coarse) is mmseg's CityscapesDataset (coarse:
``seg_map_suffix='_gtCoarse_labelTrainIds.png'``, see configs/_base_/datasets/) with the
project's missing-data message (``SpixCityscapesDataset``)."""
from .camvid import CamVidDataset
from .cityscapes import SpixCityscapesDataset
from .suim import SUIMDataset
from .transforms import CheckSegLabels, LoadSegAnnotations

__all__ = [
    'CamVidDataset', 'SpixCityscapesDataset', 'SUIMDataset', 'CheckSegLabels', 'LoadSegAnnotations'
]
