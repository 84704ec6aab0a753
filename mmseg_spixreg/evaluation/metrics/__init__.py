# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .superpixel_metric import SuperpixelBoundaryMetric

__all__ = ['SuperpixelBoundaryMetric']
