# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Feature containers passed from the backbone to the neck and from the neck to the heads.

Both are ``tuple`` subclasses, so every stock mmseg consumer (``inputs[in_index]``,
``[inputs[i] for i in in_index]``, ``len(inputs)``) sees the plain tuple of stage outputs, while the
superpixel modules read the extra attributes.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor


class BackboneFeatures(tuple):
    """Stage outputs of a backbone plus, per downsampling, the feature pair that Suzuki compares.

    Args:
        outs (Sequence[Tensor]): stage outputs, as a stock mmseg backbone returns them.
        pairs (dict[int, tuple[Tensor, Tensor]]): ``{s: (x_s, z_2s)}`` where ``x_s`` (B, Cf, H, W)
            is the feature at stride ``s`` just before the stride-2 downsampling and ``z_2s``
            (B, Cc, ceil(H/2), ceil(W/2)) the output of the first (downsampling) block.
    """

    def __new__(cls,
                outs: Sequence[Tensor],
                pairs: Optional[Dict[int, Tuple[Tensor, Tensor]]] = None):
        obj = super().__new__(cls, outs)
        obj.pairs = dict(pairs or {})
        return obj


class AssignedFeatures(tuple):
    """Neck output: the backbone's stage outputs unchanged, plus the learned assignments.

    Args:
        outs (Sequence[Tensor]): stage outputs (same order and indices as the backbone's).
        assignments (list[Tensor]): one (B, 9, He, We) assignment per level, finest first;
            ``(He, We)`` is the level's fine size, padded up to ``coarsest size * 2**k`` when the
            input is not a multiple of the coarsest stride (see :class:`AssignmentNeck`).
        levels (Sequence[int]): the fine stride of each assignment, finest first, e.g. (4, 8).
        fine_sizes (list[tuple[int, int]]): the true (unpadded) fine size of each level.
    """

    def __new__(cls, outs: Sequence[Tensor], assignments: List[Tensor], levels: Sequence[int],
                fine_sizes: List[Tuple[int, int]]):
        obj = super().__new__(cls, outs)
        obj.assignments = list(assignments)
        obj.levels = tuple(int(s) for s in levels)
        obj.fine_sizes = [tuple(int(v) for v in hw) for hw in fine_sizes]
        return obj
