# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Evaluation: functional BR (Stutz / eq. 7) and ASA (hard superpixels / eq. 8), and the
registered SuperpixelBoundaryMetric."""
from .functional import (achievable_segmentation_accuracy, asa_counts, asa_from_assignments,
                         asa_from_assignments_counts, asa_original, boundary_map, boundary_recall,
                         boundary_recall_counts, boundary_recall_original, default_tolerance,
                         pixel_accuracy_original)
from .metrics import SuperpixelBoundaryMetric

__all__ = [
    'boundary_recall', 'boundary_recall_counts', 'boundary_map', 'default_tolerance',
    'achievable_segmentation_accuracy', 'asa_counts', 'asa_from_assignments',
    'asa_from_assignments_counts', 'SuperpixelBoundaryMetric', 'boundary_recall_original',
    'asa_original', 'pixel_accuracy_original'
]
