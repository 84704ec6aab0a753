# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The values passed from the backbone to the :class:`AssignmentNeck` and from the neck to the
:class:`HCFCNHead`.

Both are frozen dataclasses, not sequences: a consumer reads each part by name, and a stock
mmseg consumer that indexes or iterates its input (``inputs[in_index]``, ``list(inputs)``) fails
on them instead of silently losing the superpixel parts. Stock heads get the plain tuple
``stages`` (``SpixEncoderDecoder`` passes it to the auxiliary heads; ``HCFCNHead`` to its
``logits_head``).
"""
from dataclasses import dataclass, field
from typing import Dict, Tuple

from torch import Tensor


@dataclass(frozen=True, eq=False)
class BackboneFeatures:
    """A backbone's stage outputs plus, per downsampling, the feature pair that Suzuki compares.

    ``SpixEncoderDecoder.extract_feat`` builds it for the neck: ``DCNResNet.forward_pairs``
    returns one with its pairs; any other backbone's outputs are wrapped with ``pairs={}`` (the
    neck then pairs consecutive-stride stage outputs).

    Args:
        stages (Sequence[Tensor]): stage outputs, as a stock mmseg backbone returns them
            (stored as a tuple).
        pairs (dict[int, tuple[Tensor, Tensor]]): ``{s: (x_s, z_2s)}`` where ``x_s`` (B, Cf, H, W)
            is the feature at stride ``s`` just before the stride-2 downsampling and ``z_2s``
            (B, Cc, ceil(H/2), ceil(W/2)) the output of the first (downsampling) block.
            Default: no pairs.
    """
    stages: Tuple[Tensor, ...]
    pairs: Dict[int, Tuple[Tensor, Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'stages', tuple(self.stages))
        object.__setattr__(self, 'pairs', dict(self.pairs))


@dataclass(frozen=True, eq=False)
class AssignedFeatures:
    """The :class:`AssignmentNeck`'s output: the backbone's stage outputs and the assignments.

    Args:
        stages (Sequence[Tensor]): the backbone's stage outputs, unchanged (same order and
            indices: ``in_index`` keeps meaning the backbone stage).
        assignments (Sequence[Tensor]): one (B, 9, He, We) assignment per level, finest first;
            ``(He, We)`` is the level's fine size, padded up to ``coarsest size * 2**k`` when
            the input is not a multiple of the coarsest stride (see :class:`AssignmentNeck`).
        levels (Sequence[int]): the fine stride of each assignment, finest first, e.g. (4, 8).
        fine_sizes (Sequence[tuple[int, int]]): the true (unpadded) fine size of each level.

    All four are stored as tuples; ``assignments``, ``levels`` and ``fine_sizes`` must have the
    same length (ValueError).
    """
    stages: Tuple[Tensor, ...]
    assignments: Tuple[Tensor, ...]
    levels: Tuple[int, ...]
    fine_sizes: Tuple[Tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, 'stages', tuple(self.stages))
        object.__setattr__(self, 'assignments', tuple(self.assignments))
        object.__setattr__(self, 'levels', tuple(int(s) for s in self.levels))
        # the sizes stay as given (ints from ``Tensor.shape``; no int(): a traced export keeps
        # them dynamic)
        object.__setattr__(self, 'fine_sizes', tuple((h, w) for h, w in self.fine_sizes))
        if not len(self.assignments) == len(self.levels) == len(self.fine_sizes):
            raise ValueError(f'AssignedFeatures: {len(self.assignments)} assignments, '
                             f'{len(self.levels)} levels and {len(self.fine_sizes)} fine sizes; '
                             'one of each per level')
