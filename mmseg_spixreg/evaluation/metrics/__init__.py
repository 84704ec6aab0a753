# Copyright (c) mmseg_spixreg contributors. All rights reserved.
from .superpixel_metric import SuperpixelBoundaryMetric

__all__ = ['SuperpixelBoundaryMetric']
