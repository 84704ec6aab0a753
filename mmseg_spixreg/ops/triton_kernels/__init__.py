# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernel set: kernels shaped for the memory system, for GPUs.

Same interface as :mod:`..torch_kernels` (``upsample``, ``downsample``,
``weighted_mean``, ``correlation``, ``seed_softmax``, ``channel_dot``,
``scope``) plus the fused chains ``reconstruct_forward`` /
``reconstruct_backward`` (q(x, A) of eq. 3), ``upsample_levels`` (the
upsamplings of a hierarchy) and ``hard_superpixels``; the contractions are
those of :mod:`..layout`. q(x, [A4, A8]) forward + backward is 7 launches,
with no torch operation between them.

* :mod:`.kernels`      the kernels (how they are shaped is stated there);
* :mod:`.launch`       their launch code: tile sizes, the limits checked
  before any launch (:func:`check_limits`), a launcher per kernel;
* :mod:`.interpreter`  interpreted launches (``TRITON_INTERPRET=1``, CPU
  tensors too) that leave ``triton.language`` as they found it;
* :mod:`.kernel_set`   the interface above.
"""
from .kernel_set import (channel_dot, correlation, downsample, hard_superpixels,
                         reconstruct_backward, reconstruct_forward, scope, seed_softmax, upsample,
                         upsample_levels, weighted_mean)
from .launch import check_limits

__all__ = [
    'channel_dot', 'check_limits', 'correlation', 'downsample', 'hard_superpixels',
    'reconstruct_backward', 'reconstruct_forward', 'scope', 'seed_softmax', 'upsample',
    'upsample_levels', 'weighted_mean'
]
