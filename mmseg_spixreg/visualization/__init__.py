# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel visualisation: drawing helpers, SpixSegLocalVisualizer and the hook."""
from .drawing import (colorize_labels, draw_superpixel_boundaries, superpixel_panel,
                      thin_boundary_map)
from .spix_seg_local_visualizer import SpixSegLocalVisualizer
from .superpixel_visualization_hook import SuperpixelVisualizationHook

__all__ = [
    'colorize_labels', 'draw_superpixel_boundaries', 'superpixel_panel', 'SpixSegLocalVisualizer',
    'SuperpixelVisualizationHook', 'thin_boundary_map'
]
