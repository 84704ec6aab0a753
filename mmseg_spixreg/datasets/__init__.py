# Copyright (c) mmseg_spixreg contributors. All rights reserved.
"""Datasets. Cityscapes (fine or coarse) needs no class of its own: mmseg's CityscapesDataset with
``seg_map_suffix='_gtCoarse_labelTrainIds.png'`` (see configs/_base_/datasets/)."""
from .camvid import CamVidDataset
from .suim import SUIMDataset
from .transforms import CheckSegLabels

__all__ = ['CamVidDataset', 'SUIMDataset', 'CheckSegLabels']
