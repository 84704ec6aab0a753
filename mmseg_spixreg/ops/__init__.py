# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel core ops of HCFCN: pure tensor functions, no registry/weights.

One concern per file:

* :mod:`.layout`          the layout contract of an assignment (stated there,
  once), layout helpers and the input checks;
* :mod:`.torch_kernels`   every op once in plain tensor ops (any device): the
  reference, and what an export traces;
* :mod:`.triton_kernels`  the fused Triton kernels (GPU; CPU through Triton's
  interpreter with ``TRITON_INTERPRET=1``), a package: the kernels apart
  from their launch code;
* :mod:`.functions`       the autograd functions, written once for both sets;
* :mod:`.backends`        the ``backend`` switch (and :func:`.backends.exporting`,
  checked by the ops and the DCNv2 layer);
* :mod:`.superpixel`      the public operators.

The learned assignment of eq. 1 (it has weights) is
:class:`mmseg_spixreg.models.utils.SuperpixelAssignment`.
"""
from .layout import NUM_SEEDS, SEED_OFFSETS, seed_coordinates, valid_seed_mask
from .superpixel import (BACKENDS, hard_superpixels, neighbour_correlation, seed_softmax,
                         superpixel_downsample, superpixel_reconstruct, superpixel_upsample,
                         superpixel_upsample_hierarchy)

__all__ = [
    'BACKENDS', 'NUM_SEEDS', 'SEED_OFFSETS', 'hard_superpixels', 'neighbour_correlation',
    'seed_coordinates', 'seed_softmax', 'superpixel_downsample', 'superpixel_reconstruct',
    'superpixel_upsample', 'superpixel_upsample_hierarchy', 'valid_seed_mask'
]
