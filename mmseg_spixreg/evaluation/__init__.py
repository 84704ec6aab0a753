# Copyright (c) mmseg_spixreg contributors. All rights reserved.
"""Evaluation: functional BR / ASA (numpy) and the registered SuperpixelBoundaryMetric."""
from .functional import (achievable_segmentation_accuracy, asa_counts, boundary_map,
                         boundary_recall, boundary_recall_counts, default_tolerance)
from .metrics import SuperpixelBoundaryMetric

__all__ = [
    'boundary_recall', 'boundary_recall_counts', 'boundary_map', 'default_tolerance',
    'achievable_segmentation_accuracy', 'asa_counts', 'SuperpixelBoundaryMetric'
]
