# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernel set's interface: the functions of :mod:`..torch_kernels`
and the fused chains, each a few launches of :mod:`.launch`."""
import contextlib
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .launch import (accumulation_dtypes, check_limits, contiguous, launch_correlation,
                     launch_downsample, launch_hard_superpixels, launch_upsample, launch_upsample2,
                     result_dtype)


def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Eq. 2: (B, C, h, w), (B, 9, 2h, 2w) -> (B, C, 2h, 2w) in the promoted
    input dtype (into ``out`` if given)."""
    coarse, assign = contiguous(coarse), contiguous(assign)
    check_limits(coarse, assign)
    B, C, h, w = coarse.shape
    if out is None:
        out = coarse.new_empty(B, C, 2 * h, 2 * w, dtype=result_dtype(coarse, assign))
    return launch_upsample(coarse, assign, out)


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Adjoint of :func:`upsample` in its first argument (the weighted-mean
    numerator): (B, C, H, W), (B, 9, H, W) -> (B, C, H/2, W/2)."""
    fine, assign = contiguous(fine), contiguous(assign)
    check_limits(fine, assign)
    B, C, H, W = fine.shape
    if out is None:
        out = fine.new_empty(B, C, H // 2, W // 2, dtype=result_dtype(fine, assign))
    return launch_downsample(fine, assign, out)


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))`` in one
    launch; the mass in the accumulation dtype."""
    fine, assign = contiguous(fine), contiguous(assign)
    check_limits(fine, assign)
    B, C, H, W = fine.shape
    out = fine.new_empty(B, C, H // 2, W // 2, dtype=result_dtype(fine, assign))
    denom = fine.new_empty(B, 1, H // 2, W // 2, dtype=accumulation_dtypes(fine, assign)[0])
    launch_downsample(fine, assign, out, denom, mass=True, eps=eps)
    return out, denom


def correlation(fine: Tensor, coarse: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j]> - bias[seed_j]:
    (B, C, H, W), (B, C, H/2, W/2), bias (B, 1, H/2, W/2) -> (B, 9, H, W)."""
    fine, coarse = contiguous(fine), contiguous(coarse)
    check_limits(fine, coarse)
    B, _, H, W = fine.shape
    out = fine.new_empty(B, 9, H, W, dtype=result_dtype(fine, coarse))
    return launch_correlation(
        out, g=fine, u=coarse, bias=None if bias is None else contiguous(bias))


def seed_softmax(fine: Tensor,
                 coarse: Tensor,
                 tau: float,
                 norm_eps: Optional[float] = None) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``
    (out-of-map seeds exactly 0), fused in one launch: (B, 9, H, W) in the
    accumulation dtype. With ``norm_eps``, of the cosine similarities instead
    (``F.normalize(., eps=norm_eps)`` of both inputs, in the same launch)."""
    fine, coarse = contiguous(fine), contiguous(coarse)
    check_limits(fine, coarse)
    B, _, H, W = fine.shape
    out = fine.new_empty(B, 9, H, W, dtype=accumulation_dtypes(fine, coarse)[0])
    return launch_correlation(out, g=fine, u=coarse, softmax_scale=1.0 / tau, norm_eps=norm_eps)


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors -> (B, 1, h, w), in
    their promoted dtype."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    return torch.linalg.vecdot(a.to(dtype), b.to(dtype), dim=1).unsqueeze(1)


def scope(device: torch.device, numel: int = 0):
    """Context of one autograd ``forward``/``backward``: Triton launches on
    the current CUDA device, so make it the inputs' one (``numel``, the size
    of the largest input, is not needed here)."""
    if device.type == 'cuda':
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def upsample_levels(coarse: Tensor,
                    assignments: Sequence[Tensor],
                    keep: bool = False) -> Tuple[Tensor, List[Tensor]]:
    """``U_1(...U_L(coarse))`` through ``assignments`` (finest first), the two
    finest upsamplings fused in one launch: L - 1 launches for L >= 2.

    Returns:
        tuple: the result (B, C, H, W) in the promoted input dtype, and the
        intermediates ``[u_1, ..., u_{L-1}]`` (the input of the upsampling by
        ``assignments[l]`` is ``u_l``; accumulation dtype) when ``keep``,
        else ``[]``.
    """
    coarse = contiguous(coarse)
    assignments = [contiguous(a) for a in assignments]
    check_limits(coarse, *assignments)
    B, C = coarse.shape[:2]
    acc = accumulation_dtypes(coarse, *assignments)[0]
    result = result_dtype(coarse, *assignments)
    levels = len(assignments)
    mids: List[Optional[Tensor]] = [None] * levels
    feat = coarse
    for lvl in range(levels - 1, 1, -1):  # the coarse levels one by one
        H, W = assignments[lvl].shape[-2:]
        feat = launch_upsample(feat, assignments[lvl], coarse.new_empty(B, C, H, W, dtype=acc))
        mids[lvl - 1] = feat
    H, W = assignments[0].shape[-2:]
    out = coarse.new_empty(B, C, H, W, dtype=result)
    if levels == 1:
        launch_upsample(feat, assignments[0], out)
    else:
        mid = coarse.new_empty(B, C, H // 2, W // 2, dtype=acc)
        launch_upsample2(feat, assignments[1], assignments[0], mid, out)
        mids[0] = mid
    return out, ([m for m in mids if m is not None] if keep else [])


def reconstruct_forward(x: Tensor, assignments: Sequence[Tensor],
                        eps: float) -> Tuple[Tensor, List[Tensor]]:
    """q(x, A) = U_1(...U_L(D_L(...D_1(x)))) in 2L - 1 launches (3 for [A4,
    A8]): a weighted-mean launch per level (mean and mass in one pass), then
    :func:`upsample_levels`.

    Returns:
        tuple: q (B, C, H, W) in the promoted input dtype, and what the
        backward pass needs: ``[c_1..c_L, m_1..m_L, u_1..u_{L-1}]``, the
        weighted means, their normalisers ``mass + eps`` and the upsampled
        intermediates (accumulation dtype). Kept rather than recomputed: for
        [A4, A8] at C channels and H x W pixels that is (C (1/4 + 1/16 + 1/4)
        + 1/4 + 1/16) H W elements per image, about half of ``x``.
    """
    x = contiguous(x)
    assignments = [contiguous(a) for a in assignments]
    check_limits(x, *assignments)
    acc = accumulation_dtypes(x, *assignments)[0]
    B, C = x.shape[:2]
    means, denoms = [], []
    feat = x
    for assign in assignments:
        H, W = assign.shape[-2:]
        mean = x.new_empty(B, C, H // 2, W // 2, dtype=acc)
        denom = x.new_empty(B, 1, H // 2, W // 2, dtype=acc)
        launch_downsample(feat, assign, mean, denom, mass=True, eps=eps)
        means.append(mean)
        denoms.append(denom)
        feat = mean
    out, mids = upsample_levels(feat, assignments, keep=True)
    return out, means + denoms + mids


def reconstruct_backward(grad: Tensor, x: Tensor, assignments: Sequence[Tensor],
                         saved: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """Gradients of q(x, A) w.r.t. x and every assignment in 2L launches (4
    for [A4, A8]), no torch op between them.

    With u_0 = q, u_{l-1} = U_l(u_l), u_L = c_L, c_l = D_l(c_{l-1}) / m_l:

    * G_l = D_l(G_{l-1}) (G_0 = grad), the gradient w.r.t. u_l, for l < L
      (one downsampling launch each);
    * s_L = D_L(G_{L-1}) / m_L and bias_L = <s_L, c_L> (one launch);
    * level l = L..1 (one correlation launch each): gA_l = corr(G_{l-1},
      u_l) + corr(c_{l-1}, s_l) - bias_l, and s_{l-1} = U_l(s_l) / m_{l-1},
      bias_{l-1} = <s_{l-1}, c_{l-1}> from the same gathers (at level 1,
      ``U_1(s_1)`` is the gradient w.r.t. x).
    """
    grad, x = contiguous(grad), contiguous(x)
    assignments = [contiguous(a) for a in assignments]
    levels = len(assignments)
    means = list(saved[:levels])
    denoms = list(saved[levels:2 * levels])
    mids = list(saved[2 * levels:])
    acc = accumulation_dtypes(grad, x, *assignments)[0]
    B, C = x.shape[:2]
    ups = mids + [means[-1]]  # ups[l - 1] = u_l
    gs = [grad]  # gs[l] = G_l
    for lvl in range(levels - 1):
        H, W = assignments[lvl].shape[-2:]
        gs.append(
            launch_downsample(gs[-1], assignments[lvl],
                              x.new_empty(B, C, H // 2, W // 2, dtype=acc)))
    H, W = assignments[-1].shape[-2:]
    scaled = x.new_empty(B, C, H // 2, W // 2, dtype=acc)
    bias = x.new_empty(B, 1, H // 2, W // 2, dtype=acc)
    launch_downsample(gs[-1], assignments[-1], scaled, denom=denoms[-1], other=means[-1], bias=bias)
    grad_a: List[Optional[Tensor]] = [None] * levels
    for lvl in range(levels - 1, -1, -1):  # level lvl + 1 in the docstring
        assign = assignments[lvl]
        H, W = assign.shape[-2:]
        fine = x if lvl == 0 else means[lvl - 1]
        grad_a[lvl] = assign.new_empty(B, 9, H, W)
        if lvl == 0:
            so = x.new_empty(B, C, H, W)
            launch_correlation(
                grad_a[lvl], g=gs[0], u=ups[0], f=x, s=scaled, bias=bias, assign=assign, so=so)
            return so, grad_a
        so = x.new_empty(B, C, H, W, dtype=acc)
        bo = x.new_empty(B, 1, H, W, dtype=acc)
        launch_correlation(
            grad_a[lvl],
            g=gs[lvl],
            u=ups[lvl],
            f=fine,
            s=scaled,
            bias=bias,
            assign=assign,
            den=denoms[lvl - 1],
            so=so,
            bo=bo)
        scaled, bias = so, bo
    raise AssertionError('unreachable')


def hard_superpixels(assignments: Sequence[Tensor],
                     size: Optional[Tuple[int, int]] = None,
                     crop: Optional[Tuple[int, int]] = None) -> Tensor:
    """Hard superpixels of one or two levels in one launch: (B, H, W) int64
    flat seed indices on the coarsest grid (see
    :func:`mmseg_spixreg.ops.hard_superpixels`), or, with ``size``, those of
    the top-left ``crop`` of the fine grid nearest-resized to ``size``."""
    if len(assignments) > 2:
        raise ValueError('triton hard_superpixels: one or two levels')
    a1 = contiguous(assignments[0])
    a2 = contiguous(assignments[-1])
    B, _, H, W = a1.shape
    ch, cw = crop if crop is not None else (H, W)
    oh, ow = size if size is not None else (ch, cw)
    check_limits(a1, out_size=(oh, ow))
    out = a1.new_empty(B, oh, ow, dtype=torch.int64)
    return launch_hard_superpixels(a1, a2, out, (ch, cw), two=len(assignments) == 2)
