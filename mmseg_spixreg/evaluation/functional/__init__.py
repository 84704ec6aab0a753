# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .asa import (achievable_segmentation_accuracy, asa_counts, asa_from_assignments,
                  asa_from_assignments_counts, asa_original, assignment_grid, contingency_table,
                  one_hot_bilinear_to_grid, pixel_accuracy_original)
from .boundary import (boundary_map, boundary_recall, boundary_recall_counts,
                       boundary_recall_original, default_tolerance, near_other_class, near_void,
                       original_boundary_band, original_tolerance)

__all__ = [
    'boundary_recall', 'boundary_recall_counts', 'boundary_map', 'default_tolerance',
    'achievable_segmentation_accuracy', 'asa_counts', 'contingency_table', 'asa_from_assignments',
    'asa_from_assignments_counts', 'boundary_recall_original', 'original_boundary_band',
    'near_other_class', 'near_void', 'original_tolerance', 'pixel_accuracy_original',
    'asa_original', 'one_hot_bilinear_to_grid', 'assignment_grid'
]
