# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .asa import (achievable_segmentation_accuracy, asa_counts, asa_from_assignments,
                  asa_from_assignments_counts, contingency_table)
from .boundary import boundary_map, boundary_recall, boundary_recall_counts, default_tolerance

__all__ = [
    'boundary_recall', 'boundary_recall_counts', 'boundary_map', 'default_tolerance',
    'achievable_segmentation_accuracy', 'asa_counts', 'contingency_table', 'asa_from_assignments',
    'asa_from_assignments_counts'
]
