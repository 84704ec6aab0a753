# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .check_seg_labels import CheckSegLabels
from .coarsen_labels import CoarsenLabels
from .load_seg_annotations import LoadSegAnnotations

__all__ = ['CheckSegLabels', 'CoarsenLabels', 'LoadSegAnnotations']
