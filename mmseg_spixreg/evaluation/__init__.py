# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Evaluation: functional BR (Stutz / eq. 7) and ASA (hard superpixels / eq. 8), and the
registered SuperpixelBoundaryMetric."""
from .functional import (achievable_segmentation_accuracy, asa_counts, asa_from_assignments,
                         asa_from_assignments_counts, boundary_map, boundary_recall,
                         boundary_recall_counts, default_tolerance)
from .metrics import SuperpixelBoundaryMetric

__all__ = [
    'boundary_recall', 'boundary_recall_counts', 'boundary_map', 'default_tolerance',
    'achievable_segmentation_accuracy', 'asa_counts', 'asa_from_assignments',
    'asa_from_assignments_counts', 'SuperpixelBoundaryMetric'
]
