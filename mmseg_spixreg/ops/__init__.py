# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel core ops of HCFCN: pure tensor functions, no registry.

Layout of an assignment ``A`` (B, 9, H, W) on the fine grid: channel
``j = 3 * (dy + 1) + (dx + 1)`` is the coarse seed ``(y // 2 + dy,
x // 2 + dx)`` of fine pixel ``(y, x)``; out-of-map seeds weigh 0.
"""
from .assignment import SuperpixelAssignment
from .superpixel import (NUM_SEEDS, SEED_OFFSETS, hard_superpixels,
                         neighbour_correlation, seed_coordinates,
                         superpixel_downsample, superpixel_reconstruct,
                         superpixel_upsample, valid_seed_mask)

__all__ = [
    'NUM_SEEDS', 'SEED_OFFSETS', 'SuperpixelAssignment', 'hard_superpixels',
    'neighbour_correlation', 'seed_coordinates', 'superpixel_downsample',
    'superpixel_reconstruct', 'superpixel_upsample', 'valid_seed_mask'
]
