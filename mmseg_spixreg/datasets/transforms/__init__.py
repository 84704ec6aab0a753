# Copyright (c) mmseg_spixreg contributors. All rights reserved.
from .check_seg_labels import CheckSegLabels

__all__ = ['CheckSegLabels']
