# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Autograd functions of the superpixel ops, shared by both kernel sets.

Every function takes the kernel set as its first argument: the module
:mod:`.torch_kernels` or :mod:`.triton_kernels`, which both provide
``upsample``, ``downsample``, ``weighted_mean``, ``correlation``,
``channel_dot`` and ``scope`` with the same signatures (see :mod:`.layout` for
what the three contractions are). Forward and backward are written once, in
terms of those contractions; the functions save only their inputs (plus the
small coarse outputs of the weighted means), and ``q(x, A)`` is a single node
that recomputes its upsampled intermediates in backward and frees each as soon
as it is used, so its peak memory stays close to that of its output and
gradients.
"""
import functools
from types import ModuleType
from typing import Callable, List, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def _in_scope(fn: Callable) -> Callable:
    """Run an autograd ``forward``/``backward`` inside ``kernels.scope``."""

    @functools.wraps(fn)
    def wrapper(ctx, kernels_or_grad, *args):
        kernels = getattr(ctx, 'kernels', kernels_or_grad)
        tensors = [a for a in (kernels_or_grad, ) + args if isinstance(a, Tensor)]
        with kernels.scope(tensors[0].device, max(t.numel() for t in tensors)):
            return fn(ctx, kernels_or_grad, *args)

    return wrapper


class SuperpixelUpsampleFn(torch.autograd.Function):
    """Eq. 2 with a hand-written backward that saves only the inputs."""

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, coarse: Tensor, assign: Tensor) -> Tensor:
        ctx.kernels = kernels
        ctx.save_for_backward(coarse, assign)
        return kernels.upsample(coarse, assign)

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        coarse, assign = ctx.saved_tensors
        grad_coarse = grad_assign = None
        if ctx.needs_input_grad[1]:
            grad_coarse = ctx.kernels.downsample(grad_out, assign)
        if ctx.needs_input_grad[2]:
            grad_assign = ctx.kernels.correlation(grad_out, coarse)
        return None, grad_coarse, grad_assign


class SuperpixelDownsampleFn(torch.autograd.Function):
    """Weighted superpixel mean; saves the inputs, the (coarse) output and
    the (B, 1, h, w) normaliser."""

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, fine: Tensor, assign: Tensor, eps: float) -> Tensor:
        ctx.kernels = kernels
        out, denom = kernels.weighted_mean(fine, assign, eps)
        ctx.save_for_backward(fine, assign, out, denom)
        return out

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        fine, assign, out, denom = ctx.saved_tensors
        kernels = ctx.kernels
        grad_fine = grad_assign = None
        # out = num / denom  =>  d out[s] / d num[s] = 1 / denom[s] and
        # d out[s] / d A[j, y, x] = (fine[y, x] - out[s]) / denom[s].
        scaled = grad_out / denom
        if ctx.needs_input_grad[1]:
            grad_fine = kernels.upsample(scaled, assign)
        if ctx.needs_input_grad[2]:
            bias = kernels.channel_dot(scaled, out)
            grad_assign = kernels.correlation(fine, scaled, bias)
        return None, grad_fine, grad_assign, None


class NeighbourCorrelationFn(torch.autograd.Function):
    """Dot products between each fine pixel and its 9 seeds."""

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, fine: Tensor, coarse: Tensor) -> Tensor:
        ctx.kernels = kernels
        ctx.save_for_backward(fine, coarse)
        return kernels.correlation(fine, coarse)

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        fine, coarse = ctx.saved_tensors
        grad_fine = grad_coarse = None
        if ctx.needs_input_grad[1]:
            grad_fine = ctx.kernels.upsample(coarse, grad_out)
        if ctx.needs_input_grad[2]:
            grad_coarse = ctx.kernels.downsample(fine, grad_out)
        return None, grad_fine, grad_coarse


class SeedSoftmaxFn(torch.autograd.Function):
    """Masked softmax over the 9 seeds of ``<fine, coarse[seed_j]> / tau``
    (the Triton kernel set fuses the correlation and the softmax; saves the
    inputs and the (B, 9, H, W) result)."""

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, fine: Tensor, coarse: Tensor, tau: float) -> Tensor:
        ctx.kernels = kernels
        ctx.tau = tau
        assign = kernels.seed_softmax(fine, coarse, tau)
        ctx.save_for_backward(fine, coarse, assign)
        return assign

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        fine, coarse, assign = ctx.saved_tensors
        kernels = ctx.kernels
        # softmax: d logits = A * (g - sum_j A_j g_j); logits = corr / tau.
        # Out-of-map seeds have A = 0, hence zero gradient.
        grad_logits = grad_out * assign
        grad_logits.sub_(assign * grad_logits.sum(1, keepdim=True))
        grad_logits.div_(ctx.tau)
        grad_fine = grad_coarse = None
        if ctx.needs_input_grad[1]:
            grad_fine = kernels.upsample(coarse, grad_logits)
        if ctx.needs_input_grad[2]:
            grad_coarse = kernels.downsample(fine, grad_logits)
        return None, grad_fine, grad_coarse, None


def reconstruct(kernels: ModuleType, x: Tensor, assignments: Sequence[Tensor],
                eps: float) -> Tensor:
    """``q(x, A) = U_1(...U_L(D_L(...D_1(x))))`` (eq. 3) from a kernel set's functions, without
    autograd: the forward pass of :class:`SuperpixelReconstructFn` for the torch set, and what
    the public op runs while a model is exported or compiled."""
    return _reconstruct(kernels, x, assignments, eps)[0]


def _reconstruct(kernels: ModuleType, x: Tensor, assignments: Sequence[Tensor],
                 eps: float) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    """:func:`reconstruct` and the weighted means and normalisers of :func:`_weighted_means`."""
    coarse, denoms = _weighted_means(kernels, x, assignments, eps)
    feat = coarse[-1]
    for assign in reversed(assignments):
        feat = kernels.upsample(feat, assign)
    return feat, coarse, denoms


def upsample_levels(kernels: ModuleType, coarse: Tensor,
                    assignments: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """``U_1(...U_L(coarse))`` and the intermediates ``[U_2(...), ..., U_L(coarse)]`` (finest
    first) from a kernel set's ``upsample``, without autograd."""
    mids, feat = [], coarse
    for assign in reversed(assignments[1:]):
        feat = kernels.upsample(feat, assign)
        mids.insert(0, feat)
    return kernels.upsample(feat, assignments[0]), mids


def _weighted_means(kernels: ModuleType, x: Tensor, assignments: Sequence[Tensor],
                    eps: float) -> Tuple[List[Tensor], List[Tensor]]:
    """The downsampling chain c_l = D_l(c_{l-1}), c_0 = x.

    Returns:
        tuple: ``(coarse, denoms)``, lists over levels of the weighted means
        (B, C, h_l, w_l) and of their normalisers ``mass + eps``
        (B, 1, h_l, w_l).
    """
    coarse, denoms = [], []
    feat = x
    for assign in assignments:
        feat, denom = kernels.weighted_mean(feat, assign, eps)
        coarse.append(feat)
        denoms.append(denom)
    return coarse, denoms


class SuperpixelReconstructFn(torch.autograd.Function):
    """q(x, A) of eq. 3 as one node.

    A kernel set with fused chains (``reconstruct_forward`` /
    ``reconstruct_backward``: the Triton set) runs the forward pass in 2L - 1
    launches, keeps the coarse intermediates it produced (the weighted means,
    their normalisers and the upsampled intermediates: about half the size of
    ``x`` for two levels) and runs the backward pass in 2L launches with no
    torch op between them. Otherwise (the torch set) the node saves its inputs
    and the weighted means with their normalisers (a quarter of the size of
    ``x`` and less), recomputes the upsampled intermediates in backward, adds
    both gradient contributions of each assignment into one buffer and
    releases every intermediate it made as soon as it has been used.
    """

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, eps: float, x: Tensor, *assignments: Tensor) -> Tensor:
        ctx.kernels = kernels
        ctx.levels = len(assignments)
        fused = getattr(kernels, 'reconstruct_forward', None)
        if fused is not None:
            out, saved = fused(x, assignments, eps)
            ctx.save_for_backward(x, *assignments, *saved)
            return out
        out, coarse, denoms = _reconstruct(kernels, x, assignments, eps)
        ctx.save_for_backward(x, *assignments, *coarse, *denoms)
        return out

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        x, *rest = ctx.saved_tensors
        assignments, saved = rest[:ctx.levels], rest[ctx.levels:]
        kernels = ctx.kernels
        fused = getattr(kernels, 'reconstruct_backward', None)
        if fused is not None:
            grad_x, grad_a = fused(grad_out, x, assignments, saved)
            grad_a = [g if need else None for g, need in zip(grad_a, ctx.needs_input_grad[3:])]
            return (None, None, grad_x if ctx.needs_input_grad[2] else None, *grad_a)
        # The weighted means c_l = D_l(c_{l-1}) and their normalisers.
        levels = len(assignments)
        coarse, denoms = list(saved[:levels]), list(saved[levels:])
        del saved
        need_x = ctx.needs_input_grad[2]
        need_a = ctx.needs_input_grad[3:]
        # Upsampled intermediates: ups[l] is the input of the upsampling by
        # assignments[l], ups[-1] = c_L. Below the coarsest level, the same
        # buffer then receives the gradient w.r.t. ups[l] and later the one
        # w.r.t. coarse[l]: one allocation per level instead of three.
        ups = [None] * levels
        ups[-1] = coarse[-1]
        for lvl in range(levels - 1, 0, -1):
            ups[lvl - 1] = kernels.upsample(ups[lvl], assignments[lvl])
        grad_a = [None] * levels
        # Through the upsampling chain U_1(...U_L(c_L)), finest first.
        grad = grad_out
        for lvl, assign in enumerate(assignments):
            if need_a[lvl]:
                grad_a[lvl] = kernels.correlation(grad, ups[lvl])
            grad = kernels.downsample(grad, assign, out=ups[lvl] if lvl < levels - 1 else None)
        # Through the downsampling chain D_L(...D_1(x)), coarsest first.
        for lvl in range(levels - 1, -1, -1):
            assign = assignments[lvl]
            scaled = grad.div_(denoms[lvl])  # grad is ours: reuse in place
            del grad
            if need_a[lvl]:
                bias = kernels.channel_dot(scaled, coarse[lvl])
                fine = x if lvl == 0 else coarse[lvl - 1]
                if grad_a[lvl] is None:
                    grad_a[lvl] = kernels.correlation(fine, scaled, bias)
                else:
                    kernels.correlation(fine, scaled, bias, grad_a[lvl])
                del bias, fine
            coarse[lvl] = None
            if lvl == 0 and not need_x:
                grad = None
                break
            grad = kernels.upsample(scaled, assign, out=ups[lvl - 1] if lvl > 0 else None)
            del scaled
        return (None, None, grad, *grad_a)


class SuperpixelUpsampleHierarchyFn(torch.autograd.Function):
    """``U_1(...U_L(coarse))`` through a hierarchy of assignments as one node.

    A kernel set with ``upsample_levels`` (the Triton set) fuses the two finest
    upsamplings into one launch; the intermediates are kept only when a
    gradient is needed (the no-grad inference path stores nothing extra).
    Backward: per level ``gA_l = corr(G_{l-1}, u_l)``, ``G_l = D_l(G_{l-1})``.
    """

    @staticmethod
    @_in_scope
    def forward(ctx, kernels: ModuleType, coarse: Tensor, *assignments: Tensor) -> Tensor:
        ctx.kernels = kernels
        keep = any(ctx.needs_input_grad[2:])
        fused = getattr(kernels, 'upsample_levels', None)
        if fused is not None:
            out, mids = fused(coarse, assignments, keep=keep)
        else:
            out, mids = upsample_levels(kernels, coarse, assignments)
        ctx.save_for_backward(coarse, *assignments, *(mids if keep else []))
        ctx.levels = len(assignments)
        return out

    @staticmethod
    @once_differentiable
    @_in_scope
    def backward(ctx, grad_out: Tensor):
        coarse, *rest = ctx.saved_tensors
        assignments, mids = rest[:ctx.levels], rest[ctx.levels:]
        ups = list(mids) + [coarse]  # ups[l] is the input of the upsampling by assignments[l]
        kernels = ctx.kernels
        grad_a = [None] * ctx.levels
        grad = grad_out
        for lvl, assign in enumerate(assignments):
            if ctx.needs_input_grad[2 + lvl]:
                grad_a[lvl] = kernels.correlation(grad, ups[lvl])
            if lvl == ctx.levels - 1 and not ctx.needs_input_grad[1]:
                grad = None
                break
            grad = kernels.downsample(grad, assign)
        return (None, grad, *grad_a)
