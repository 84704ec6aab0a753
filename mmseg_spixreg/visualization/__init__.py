# Copyright (c) mmseg_spixreg contributors. All rights reserved.
"""Superpixel visualisation: drawing helpers and the SuperpixelVisualizationHook."""
from .drawing import colorize_labels, draw_superpixel_boundaries, superpixel_panel
from .superpixel_visualization_hook import SuperpixelVisualizationHook

__all__ = [
    'colorize_labels', 'draw_superpixel_boundaries', 'superpixel_panel',
    'SuperpixelVisualizationHook'
]
