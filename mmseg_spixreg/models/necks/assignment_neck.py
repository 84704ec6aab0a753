# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Neck computing the learned superpixel assignments A(s) from backbone feature pairs."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ..utils import AssignedFeatures, BackboneFeatures, SuperpixelAssignment


def _is_pow2(v: int) -> bool:
    return v >= 1 and (v & (v - 1)) == 0


@MODELS.register_module()
class AssignmentNeck(BaseModule):
    """Computes A(s) for each configured level s and passes it on WITH the backbone features.

    For a level ``s`` the assignment compares a fine feature x(s) (stride ``s``) with a coarse
    feature z(2s) (stride ``2s``) with :class:`mmseg_spixreg.models.utils.SuperpixelAssignment`
    (eq. 1).
    Its input is :class:`BackboneFeatures`, which ``SpixEncoderDecoder.extract_feat`` builds
    from the backbone (anything else: ValueError). Where the pair comes from:

    * ``pairs[s]`` when the backbone gives one (:class:`DCNResNet`, through its
      ``forward_pairs``): x(s) = the feature entering the stride-2 stage, z(2s) = the output of
      that stage's first (downsampling) block (Suzuki's choice);
    * otherwise (e.g. mmseg's ``ResNetV1c``, whose outputs come with no pairs) consecutive-stride
      stage outputs: x(s) = the first output whose stride (``in_strides``) is ``s`` and z(2s) =
      the first whose stride is ``2s``.

    Sizes that are not multiples of the coarsest stride: the ops need, at every level, an even
    fine grid with coarse = fine / 2, and the levels must chain (the coarse grid of A(s) is the
    fine grid of A(2s)). ResNet's stride-2 layers give coarse = ceil(fine / 2), so for such inputs
    the features of each level are replicate-padded (bottom/right) to ``h_top * 2**k`` where
    ``h_top`` is the coarsest map's size; the head crops its upsampled logits back to
    ``fine_sizes[0]`` and the SLIC loss / superpixels crop likewise. (The configs pad test images
    to a multiple of 16 through ``data_preprocessor.test_cfg.size_divisor``, so this only matters
    for a stock setup without it.)

    The output is :class:`AssignedFeatures`: ``stages``, the input stage outputs unchanged (so
    ``in_index`` keeps meaning the backbone stage for every head, auxiliary heads included),
    ``assignments`` (finest first), ``levels`` and ``fine_sizes``.

    ``levels``, ``embed_dims`` and ``tau`` are required keyword arguments: the paper's values
    ((4, 8), 48, 0.07) have one home, ``configs/_base_/models/hcfcn.py``.

    Args:
        in_channels (Sequence[int]): channels of each backbone output.
        in_strides (Sequence[int]): output stride of each backbone output (same length).
        levels (Sequence[int]): fine strides whose assignment is learned, finest first, each
            twice the previous; checked here only: the head and the SLIC loss use the neck's
            output (``levels``, ``assignments``), so the levels are set in the neck alone.
        embed_dims (int): K, the projection dimension of eq. 1.
        tau (float): softmax temperature of eq. 1.
        pair_channels (dict[int, tuple[int, int]], optional): (fine, coarse) channels of each
            level's pair when they differ from what ``in_channels``/``in_strides`` imply.
        similarity (str): 'cosine' (eq. 1, default) or 'dot' (the thesis's own code: dot
            products, out-of-map seeds in the softmax with logit 0), passed to every
            :class:`SuperpixelAssignment`.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 in_strides: Sequence[int],
                 *,
                 levels: Sequence[int],
                 embed_dims: int,
                 tau: float,
                 pair_channels: Optional[Dict[int, Tuple[int, int]]] = None,
                 similarity: str = 'cosine',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels, in_strides = list(in_channels), list(in_strides)
        if len(in_channels) != len(in_strides):
            raise ValueError(f'AssignmentNeck: in_channels {in_channels} and in_strides '
                             f'{in_strides} must have the same length')
        if not isinstance(levels, (list, tuple)) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in levels):
            raise ValueError(f'AssignmentNeck: levels must be a list or tuple of int strides, '
                             f'finest first, e.g. (4, 8), got {levels!r}')
        levels = [int(s) for s in levels]
        if not levels:
            raise ValueError('AssignmentNeck: at least one assignment level is required')
        if any(b != 2 * a for a, b in zip(levels[:-1], levels[1:])):
            raise ValueError(f'AssignmentNeck: levels must be consecutive strides, finest first '
                             f'(the coarse grid of A(s) is the fine grid of A(2s)), got {levels}')
        pair_channels = {int(k): tuple(v) for k, v in (pair_channels or {}).items()}
        self.in_channels = in_channels
        self.in_strides = in_strides
        self.levels = tuple(levels)
        self.pair_index: Dict[int, Tuple[int, int]] = {}
        self.assigners = nn.ModuleList()
        for s in levels:
            if not _is_pow2(s) or s not in in_strides or 2 * s not in in_strides:
                raise ValueError(
                    f'AssignmentNeck: unknown assignment level {s}: it needs backbone outputs '
                    f'at strides {s} and {2 * s}, available strides are {in_strides}')
            fi, ci = in_strides.index(s), in_strides.index(2 * s)
            self.pair_index[s] = (fi, ci)
            cf, cc = pair_channels.get(s, (in_channels[fi], in_channels[ci]))
            # SuperpixelAssignment checks K and tau (ValueError naming them)
            self.assigners.append(
                SuperpixelAssignment(cf, cc, embed_dims=embed_dims, tau=tau, similarity=similarity))
        self.embed_dims = embed_dims
        self.tau = float(tau)

    def _pair(self, inputs: BackboneFeatures, level: int) -> Tuple[Tensor, Tensor]:
        if level in inputs.pairs:
            return inputs.pairs[level]
        fi, ci = self.pair_index[level]
        return inputs.stages[fi], inputs.stages[ci]

    @staticmethod
    def _pad_to(x: Tensor, h: int, w: int) -> Tensor:
        """Replicate-pad (bottom/right) ``x`` (B, C, h0, w0) to (B, C, h, w)."""
        h0, w0 = x.shape[-2:]
        if (h0, w0) == (h, w):
            return x
        if h0 > h or w0 > w:
            raise ValueError(f'AssignmentNeck: feature {tuple(x.shape)} larger than the level '
                             f'grid {(h, w)}; inconsistent backbone strides')
        return F.pad(x, (0, w - w0, 0, h - h0), mode='replicate')

    def forward(self, inputs: BackboneFeatures) -> AssignedFeatures:
        """Args:
            inputs (BackboneFeatures): the backbone's stage outputs, (B, C_i, H/s_i, W/s_i)
                each, and its feature pairs (if any).

        Returns:
            AssignedFeatures: ``stages`` = ``inputs.stages``, ``assignments`` = (A(s) (B, 9,
            He_s, We_s) for s in levels), ``levels`` and ``fine_sizes`` = ((H_s, W_s), ...).
        """
        if not isinstance(inputs, BackboneFeatures):
            raise ValueError('AssignmentNeck needs BackboneFeatures (stages, pairs), which '
                             "SpixEncoderDecoder.extract_feat builds from the backbone, got "
                             f"{type(inputs).__name__}: use model.type='SpixEncoderDecoder'")
        if len(inputs.stages) != len(self.in_strides):
            raise ValueError(f'AssignmentNeck: expected {len(self.in_strides)} backbone outputs '
                             f'(in_strides={self.in_strides}), got {len(inputs.stages)}')
        pairs = [self._pair(inputs, level) for level in self.levels]
        for level, (fine, coarse) in zip(self.levels, pairs):
            h, w = fine.shape[-2:]
            if tuple(coarse.shape[-2:]) != ((h + 1) // 2, (w + 1) // 2):
                raise ValueError(
                    f'AssignmentNeck: level {level}: coarse feature {tuple(coarse.shape)} is not '
                    f'the stride-2 map of fine feature {tuple(fine.shape)}')
        h_top, w_top = pairs[-1][1].shape[-2:]
        num = len(self.levels)
        assignments: List[Tensor] = []
        sizes: List[Tuple[int, int]] = []
        for i, (assigner, (fine, coarse)) in enumerate(zip(self.assigners, pairs)):
            h, w = fine.shape[-2:]
            th, tw = h_top * 2**(num - i), w_top * 2**(num - i)
            fine = self._pad_to(fine, th, tw)
            coarse = self._pad_to(coarse, th // 2, tw // 2)
            assignments.append(assigner(fine, coarse))
            sizes.append((h, w))
        return AssignedFeatures(inputs.stages, assignments, self.levels, sizes)
