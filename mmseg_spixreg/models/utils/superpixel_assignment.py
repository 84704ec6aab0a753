# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Pixel-to-seed assignment of HCFCN, eq. 1 of Suzuki (2021)."""
import math

import torch
import torch.nn as nn
from torch import Tensor

from ...ops import BACKENDS, neighbour_correlation, seed_softmax
from ...ops.layout import _autocast_off, _check_coarse_pair, _check_even, _check_tensor

SIMILARITIES = ('cosine', 'dot')


class SuperpixelAssignment(nn.Module):
    """Soft assignment of fine pixels to the 3x3 neighbouring coarse seeds.

    Eq. 1 of Suzuki (2021)::

        A[j, y, x] = exp(cos(W f[y, x], W~ g[seed_j]) / tau)
                     / sum_{j' valid} exp(cos(W f[y, x], W~ g[seed_j']) / tau)

    where ``f`` are the fine features, ``g`` the coarse features, ``W`` and
    ``W~`` 1x1 projections to ``K`` dimensions and the softmax runs over the
    seeds that lie inside the coarse map (out-of-map seeds get exactly 0).
    The output follows the layout contract stated in
    :mod:`mmseg_spixreg.ops.layout`. The projections are torch ops; the L2
    normalisation, the cosine similarities and the masked softmax are one
    call of :func:`mmseg_spixreg.ops.seed_softmax` (``normalize_eps``; with
    the Triton kernels in use on CUDA (``backend='triton'``, or ``'auto'``
    once they are verified or opted in with ``MMSEG_SPIXREG_TRITON=1``): one
    fused kernel without gradients, ``F.normalize`` + the fused
    similarity/softmax kernel with them).

    The similarities and the softmax are always computed in (at least)
    float32 with autocast disabled: ``1 / tau`` is about 14.3 for the paper's
    tau, and ``exp`` of that overflows float16.

    Args:
        fine_channels (int): Channels ``Cf`` of the fine features.
        coarse_channels (int): Channels ``Cc`` of the coarse features.
        embed_dims (int): Projection dimension ``K`` (required keyword; the
            paper's 48 is set in ``configs/_base_/models/hcfcn.py`` and reaches
            this module through :class:`AssignmentNeck`).
        tau (float): Softmax temperature (required keyword; the paper's 0.07,
            set there too).
        bias (bool): Whether the 1x1 projections have a bias. The paper's
            projections are plain matrices. Default: False.
        norm_eps (float): ``eps`` of the L2 normalisation (a zero feature
            vector has cosine similarity 0 to everything). Default: 1e-12.
        backend (str): Kernels of :func:`mmseg_spixreg.ops.seed_softmax`:
            ``'auto'``, ``'torch'`` or ``'triton'``. Default: ``'auto'``.
        similarity (str): ``'cosine'`` (eq. 1 as written, the default) or
            ``'dot'``, as the thesis's own code: the logits are the dot
            products of the projected (not normalised) embeddings / tau, and
            the out-of-map seeds are zero embeddings that stay in the softmax
            with logit 0 (so they take weight; the ops treat them as zero
            features). Default: ``'cosine'``.
    """

    def __init__(self,
                 fine_channels: int,
                 coarse_channels: int,
                 *,
                 embed_dims: int,
                 tau: float,
                 bias: bool = False,
                 norm_eps: float = 1e-12,
                 backend: str = 'auto',
                 similarity: str = 'cosine'):
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f'SuperpixelAssignment: similarity must be one of '
                             f'{SIMILARITIES}, got {similarity!r}')
        self.similarity = similarity
        for name, value in (('fine_channels', fine_channels), ('coarse_channels', coarse_channels),
                            ('embed_dims (K)', embed_dims)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value <= 0:
                raise ValueError(f'SuperpixelAssignment: {name} must be a '
                                 f'positive int, got {value!r}')
        float32_max = torch.finfo(torch.float32).max
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) \
                or not math.isfinite(tau) or not 1 / float32_max <= tau <= float32_max:
            raise ValueError(f'SuperpixelAssignment: tau must be a positive '
                             f'finite number, got {tau!r} (tau and 1 / tau finite in float32: '
                             f'{1 / float32_max:.3g} <= tau <= {float32_max:.3g})')
        if isinstance(norm_eps, bool) or not isinstance(norm_eps, (int, float)) or not norm_eps > 0:
            raise ValueError(f'SuperpixelAssignment: norm_eps must be a '
                             f'positive number, got {norm_eps!r}')
        if backend not in BACKENDS:
            raise ValueError(f'SuperpixelAssignment: backend must be one of '
                             f'{BACKENDS}, got {backend!r}')
        self.fine_channels = fine_channels
        self.coarse_channels = coarse_channels
        self.embed_dims = embed_dims
        self.tau = float(tau)
        self.norm_eps = float(norm_eps)
        self.backend = backend
        # W (fine -> K) and W~ (coarse -> K).
        self.fine_proj = nn.Conv2d(fine_channels, embed_dims, 1, bias=bias)
        self.coarse_proj = nn.Conv2d(coarse_channels, embed_dims, 1, bias=bias)

    def extra_repr(self) -> str:
        return (f'fine_channels={self.fine_channels}, '
                f'coarse_channels={self.coarse_channels}, '
                f'embed_dims={self.embed_dims}, tau={self.tau}, '
                f'similarity={self.similarity}')

    def _check_inputs(self, fine_feat: Tensor, coarse_feat: Tensor) -> None:
        where = 'SuperpixelAssignment'
        _check_tensor(fine_feat, 'fine_feat', where)
        _check_tensor(coarse_feat, 'coarse_feat', where)
        if fine_feat.shape[1] != self.fine_channels:
            raise ValueError(f'{where}: `fine_feat` must have '
                             f'{self.fine_channels} channels, got shape '
                             f'{tuple(fine_feat.shape)}')
        if coarse_feat.shape[1] != self.coarse_channels:
            raise ValueError(f'{where}: `coarse_feat` must have '
                             f'{self.coarse_channels} channels, got shape '
                             f'{tuple(coarse_feat.shape)}')
        _check_even(fine_feat.shape[2], fine_feat.shape[3], f'{where} (`fine_feat`)')
        _check_coarse_pair(coarse_feat, fine_feat, 'coarse_feat', 'fine_feat', where)

    def forward(self, fine_feat: Tensor, coarse_feat: Tensor) -> Tensor:
        """Compute the assignment.

        Args:
            fine_feat (Tensor): Fine features ``f``, (B, Cf, H, W), H and W
                even.
            coarse_feat (Tensor): Coarse features ``g``, (B, Cc, H/2, W/2).

        Returns:
            Tensor: Assignment ``A``, (B, 9, H, W): non-negative, rows sum to
            1 over the 9 seeds, exactly 0 on out-of-map seeds. Float32 under
            autocast (like ``torch.softmax``), otherwise the dtype of the
            projected features.
        """
        self._check_inputs(fine_feat, coarse_feat)
        device = fine_feat.device
        autocast = False
        try:
            autocast = torch.is_autocast_enabled(device.type)
        except (RuntimeError, TypeError, ValueError):
            pass
        fine_emb = self.fine_proj(fine_feat)
        coarse_emb = self.coarse_proj(coarse_feat)
        out_dtype = torch.promote_types(fine_emb.dtype, coarse_emb.dtype)
        dtype = torch.promote_types(out_dtype, torch.float32)
        with _autocast_off(device):
            if self.similarity == 'dot':
                # out-of-map seeds: correlation exactly 0 -> logit 0, kept in the softmax
                logits = neighbour_correlation(
                    fine_emb.to(dtype), coarse_emb.to(dtype), backend=self.backend) / self.tau
                assign = torch.softmax(logits, dim=1)
                return assign if autocast else assign.to(out_dtype)
            # the L2 normalisation is part of the op (folded into the softmax launch on the
            # Triton no-grad path; F.normalize with autograd otherwise)
            assign = seed_softmax(
                fine_emb.to(dtype),
                coarse_emb.to(dtype),
                self.tau,
                normalize_eps=self.norm_eps,
                backend=self.backend)
        return assign if autocast else assign.to(out_dtype)
