# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Public superpixel operators of HCFCN (Suzuki, 2021).

Every operator checks its inputs (:mod:`.layout`, which also states the layout
contract), picks a kernel set (``backend``, keyword-only: ``'auto'``,
``'torch'`` or ``'triton'``; :mod:`.backends` says what each means) and runs
the autograd function of :mod:`.functions` with it; while a model is exported or
compiled (:func:`.backends.tracing`) it calls the torch kernels
directly instead (plain tensor ops: the exported graph is the reference
implementation itself).
"""
from types import ModuleType
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from . import torch_kernels
from .backends import (BACKENDS, TRITON_ENV, _prepare, auto_uses_triton, exporting, select_kernels,
                       tracing, triton_kernels)
from .functions import (NeighbourCorrelationFn, SeedSoftmaxFn, SuperpixelDownsampleFn,
                        SuperpixelReconstructFn, SuperpixelUpsampleFn,
                        SuperpixelUpsampleHierarchyFn, reconstruct, upsample_levels)
from .layout import (_autocast_off, _check_assignment, _check_coarse_pair, _check_eps, _check_even,
                     _check_fine_pair, _check_hierarchy, _check_tensor, _dtypes)


def _run(where: str, backend: str, function, direct, tensors: Sequence[Tensor], eps=None) -> Tensor:
    """Run an operator on ``tensors`` (the first on the device that counts): pick the kernels,
    compute in >= float32 with autocast off, return the promoted input dtype.

    ``function.apply(kernels, *tensors[, eps])`` (the autograd function; ``eps`` first for
    :class:`.functions.SuperpixelReconstructFn`, last otherwise), or, for the torch kernels while
    :func:`.backends.tracing`, ``direct`` with the same arguments (plain tensor ops, autograd
    through them)."""
    device = tensors[0].device
    kernels = select_kernels(backend, device, where, tensors)
    out_dtype, dtype = _dtypes(*tensors)
    args = _prepare(kernels, dtype, *tensors)
    if eps is not None:
        args = [float(eps)] + args if function is SuperpixelReconstructFn else args + [float(eps)]
    with _autocast_off(device):
        return _apply(kernels, function, direct, *args).to(out_dtype)


def _apply(kernels: ModuleType, function, direct, *args) -> Tensor:
    if kernels is torch_kernels and tracing():
        return direct(*args)
    return function.apply(kernels, *args)


def superpixel_upsample(coarse: Tensor, assign: Tensor, *, backend: str = 'auto') -> Tensor:
    """Superpixel upsampling, eq. 2 of Suzuki (2021), one level.

    ``fine[:, y, x] = sum_j assign[j, y, x] * coarse[:, seed_j(y, x)]``.

    Args:
        coarse (Tensor): Coarse features, (B, C, H/2, W/2).
        assign (Tensor): Assignment, (B, 9, H, W) (see :mod:`.layout`).
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'`` (module
            docstring). Default: ``'auto'``.

    Returns:
        Tensor: Fine features, (B, C, H, W), in the promoted dtype of the
        inputs (computed in at least float32).
    """
    where = 'superpixel_upsample'
    _check_tensor(coarse, 'coarse', where)
    _check_assignment(assign, 'assign', where)
    _check_coarse_pair(coarse, assign, 'coarse', 'assign', where)
    return _run(where, backend, SuperpixelUpsampleFn, torch_kernels.upsample, (coarse, assign))


def superpixel_upsample_hierarchy(coarse: Tensor,
                                  assignments: Sequence[Tensor],
                                  *,
                                  backend: str = 'auto') -> Tensor:
    """Superpixel upsampling through a hierarchy: ``U_1(...U_L(coarse))``.

    The same as :func:`superpixel_upsample` applied level by level, coarsest
    first (HCFCN's 16 -> 8 -> 4), as one node: under the Triton kernels the
    two finest upsamplings are one launch, and without gradients nothing but
    the result is written. Registered as the torch op
    ``mmseg_spixreg::upsample_hierarchy`` for the no-grad Triton path, so
    ``torch.compile`` captures it without a graph break.

    Args:
        coarse (Tensor): Features on the coarse grid of the coarsest level,
            (B, C, H / 2**L, W / 2**L).
        assignments (Sequence[Tensor]): Assignments ordered finest to
            coarsest, e.g. ``[A4 (B, 9, H, W), A8 (B, 9, H/2, W/2)]``.
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: (B, C, H, W), in the promoted dtype of the inputs.
    """
    where = 'superpixel_upsample_hierarchy'
    _check_tensor(coarse, 'coarse', where)
    assignments = _check_hierarchy(assignments, where)
    _check_coarse_pair(coarse, assignments[-1], 'coarse', f'assignments[{len(assignments) - 1}]',
                       where)
    kernels = select_kernels(backend, coarse.device, where, (coarse, *assignments))
    if kernels is not torch_kernels and not (torch.is_grad_enabled() and any(
            t.requires_grad for t in (coarse, *assignments))):
        with _autocast_off(coarse.device):
            return _upsample_hierarchy_op(coarse, list(assignments))
    return _run(where, backend, SuperpixelUpsampleHierarchyFn,
                lambda c, *a: upsample_levels(torch_kernels, c, a)[0], (coarse, *assignments))


def superpixel_downsample(fine: Tensor,
                          assign: Tensor,
                          eps: float = 1e-8,
                          *,
                          backend: str = 'auto') -> Tensor:
    """Superpixel downsampling: the assignment-weighted mean of each seed.

    ``coarse[:, s] = sum_{(y, x, j): seed_j(y, x) = s} A[j, y, x] fine[:, y, x]
    / (sum_{(y, x, j): seed_j(y, x) = s} A[j, y, x] + eps)``.

    Seeds with no weight (empty superpixels) get exactly 0, with finite
    gradients: zero w.r.t. the features, and ``g * fine / (0 + eps)`` w.r.t.
    the (zero) weight of a pixel on such a seed (large, as the mean jumps to
    that pixel's value there). The normalisation is computed in at least
    float32, so ``eps`` does not underflow for half precision inputs.

    Args:
        fine (Tensor): Fine features, (B, C, H, W).
        assign (Tensor): Assignment, (B, 9, H, W).
        eps (float): Added to the seed mass. Default: 1e-8.
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: Coarse features, (B, C, H/2, W/2), in the promoted dtype of
        the inputs.
    """
    where = 'superpixel_downsample'
    _check_tensor(fine, 'fine', where)
    _check_assignment(assign, 'assign', where)
    _check_fine_pair(fine, assign, 'fine', 'assign', where)
    _check_eps(eps, where)
    return _run(where, backend, SuperpixelDownsampleFn,
                lambda f, a, e: torch_kernels.weighted_mean(f, a, e)[0], (fine, assign), eps)


def superpixel_reconstruct(x: Tensor,
                           assignments: Sequence[Tensor],
                           eps: float = 1e-8,
                           *,
                           backend: str = 'auto') -> Tensor:
    """Superpixel reconstruction ``q(x, A)``, eq. 3 of Suzuki (2021).

    Downsamples ``x`` through every level (weighted superpixel means, finest
    to coarsest) and upsamples the result back through the same levels
    (coarsest to finest), i.e. ``U_1(...U_L(D_L(...D_1(x))))``.

    Args:
        x (Tensor): Features on the finest grid, (B, C, H, W).
        assignments (Sequence[Tensor]): Assignments ordered finest to
            coarsest, level ``l`` of shape (B, 9, H / 2**l, W / 2**l), e.g.
            ``[A4, A8]``.
        eps (float): Passed to :func:`superpixel_downsample`. Default: 1e-8.
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: (B, C, H, W), in the promoted dtype of the inputs.
    """
    where = 'superpixel_reconstruct'
    _check_tensor(x, 'x', where)
    assignments = _check_hierarchy(assignments, where)
    _check_fine_pair(x, assignments[0], 'x', 'assignments[0]', where)
    _check_eps(eps, where)
    return _run(where, backend, SuperpixelReconstructFn,
                lambda e, f, *a: reconstruct(torch_kernels, f, a, e), (x, *assignments), eps)


def _check_feature_pair(fine, coarse, where: str) -> None:
    _check_tensor(fine, 'fine', where)
    _check_tensor(coarse, 'coarse', where)
    _check_even(fine.shape[2], fine.shape[3], f'{where} (`fine`)')
    _check_coarse_pair(coarse, fine, 'coarse', 'fine', where)
    if fine.shape[1] != coarse.shape[1]:
        raise ValueError(f'{where}: `fine` and `coarse` must have the same '
                         f'number of channels, got {fine.shape[1]} and '
                         f'{coarse.shape[1]}')


def neighbour_correlation(fine: Tensor, coarse: Tensor, *, backend: str = 'auto') -> Tensor:
    """Dot product of every fine pixel with each of its 9 seeds.

    ``out[:, j, y, x] = <fine[:, :, y, x], coarse[:, :, seed_j(y, x)]>``,
    exactly 0 for out-of-map seeds. With unit-norm features this is the
    cosine similarity of eq. 1.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: (B, 9, H, W), in the promoted dtype of the inputs.
    """
    where = 'neighbour_correlation'
    _check_feature_pair(fine, coarse, where)
    return _run(where, backend, NeighbourCorrelationFn, torch_kernels.correlation, (fine, coarse))


def seed_softmax(fine: Tensor,
                 coarse: Tensor,
                 tau: float,
                 *,
                 normalize_eps: Optional[float] = None,
                 backend: str = 'auto') -> Tensor:
    """Softmax over the in-map seeds of ``neighbour_correlation / tau``.

    ``A[j, y, x] = exp(r_j / tau) / sum_{j' in map} exp(r_j' / tau)`` with
    ``r_j = <fine[:, y, x], coarse[:, seed_j(y, x)]>``: the softmax of eq. 1
    of Suzuki (2021) once the features are projected and L2-normalised (see
    :class:`mmseg_spixreg.models.utils.SuperpixelAssignment`). Out-of-map
    seeds get exactly 0. Always computed in at least float32 (``1 / tau`` is
    about 14 for the paper's tau; ``exp`` of that overflows float16).

    Args:
        fine (Tensor): (B, K, H, W).
        coarse (Tensor): (B, K, H/2, W/2).
        tau (float): Temperature (> 0).
        normalize_eps (float, optional): If given, ``r_j`` is the cosine
            similarity: both inputs are L2-normalised over K first, as
            ``F.normalize(., dim=1, eps=normalize_eps)`` does. Without
            gradients the Triton kernels fold the normalisation into the
            softmax launch (one launch, no normalised copies); otherwise it
            is ``F.normalize`` (autograd through it). Default: None.
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: (B, 9, H, W) in the compute dtype (float32, or float64 for
        float64 inputs); rows sum to 1 over the 9 seeds.
    """
    where = 'seed_softmax'
    _check_feature_pair(fine, coarse, where)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) \
            or not tau > 0 or tau == float('inf'):
        raise ValueError(f'{where}: `tau` must be a positive finite number, '
                         f'got {tau!r}')
    if normalize_eps is not None and (isinstance(normalize_eps, bool)
                                      or not isinstance(normalize_eps,
                                                        (int, float)) or not normalize_eps > 0):
        raise ValueError(f'{where}: `normalize_eps` must be a positive number, got '
                         f'{normalize_eps!r}')
    kernels = select_kernels(backend, fine.device, where, (fine, coarse))
    _, dtype = _dtypes(fine, coarse)
    with _autocast_off(fine.device):
        if normalize_eps is not None:
            needs_grad = torch.is_grad_enabled() and (fine.requires_grad or coarse.requires_grad)
            if kernels is not torch_kernels and not needs_grad:
                with kernels.scope(fine.device):
                    return kernels.seed_softmax(fine, coarse, float(tau), float(normalize_eps))
            fine = torch.nn.functional.normalize(fine.to(dtype), dim=1, eps=normalize_eps)
            coarse = torch.nn.functional.normalize(coarse.to(dtype), dim=1, eps=normalize_eps)
        return _apply(kernels, SeedSoftmaxFn, torch_kernels.seed_softmax,
                      *_prepare(kernels, dtype, fine, coarse), float(tau))


def hard_superpixels(assignments: Sequence[Tensor],
                     *,
                     size: Optional[Sequence[int]] = None,
                     crop: Optional[Sequence[int]] = None,
                     backend: str = 'auto') -> Tensor:
    """Hard superpixels: follow each level's argmax seed down the hierarchy.

    Every fine pixel picks its most likely seed on the next grid; that seed
    (a pixel of the next level) picks its own most likely seed, and so on
    until the coarsest grid. Out-of-map seeds are never picked; ties go to the
    first seed (``torch.argmax``). Under the Triton kernels one or two levels
    are one launch that computes the seeds' validity from their coordinates
    and does the optional crop and resize in the same pass (registered as the
    torch op ``mmseg_spixreg::hard_superpixels``); the torch path is an argmax
    and a gather per level with the validity mask cached per grid size and
    device.

    Args:
        assignments (Sequence[Tensor]): Assignments ordered finest to
            coarsest, e.g. ``[A4 (B, 9, H, W), A8 (B, 9, H/2, W/2)]``.
        size (Sequence[int], optional): (H', W') of the result: the ids of
            the (cropped) fine grid resized to it as ``F.interpolate(...,
            mode='nearest')`` does. Default: the fine grid (or the crop).
        crop (Sequence[int], optional): (h, w): only the top-left h x w fine
            pixels (e.g. the grid without the neck's padding) are resized.
            Default: the whole fine grid.
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
            Default: ``'auto'``.

    Returns:
        Tensor: LongTensor (B, H, W) on the finest grid (or (B, H', W')); per
        pixel the flat (row-major) index ``sy * w_L + sx`` of its seed on the
        coarsest grid ``(h_L, w_L) = (H / 2**L, W / 2**L)``.
    """
    where = 'hard_superpixels'
    assignments = _check_hierarchy(assignments, where)
    if tracing():  # sizes may be symbolic: no int() (it would fix them), no checks on them
        return torch_kernels.hard_superpixels([a.detach() for a in assignments], size, crop)
    H, W = assignments[0].shape[-2:]
    crop = (H, W) if crop is None else (int(crop[0]), int(crop[1]))
    size = crop if size is None else (int(size[0]), int(size[1]))
    if not (0 < crop[0] <= H and 0 < crop[1] <= W) or min(size) <= 0:
        raise ValueError(f'{where}: `crop` {crop} must lie inside the fine grid {(H, W)} and '
                         f'`size` {size} be positive')
    kernels = select_kernels(backend, assignments[0].device, where, assignments, out_size=size)
    if kernels is not torch_kernels and len(assignments) <= 2:
        return _hard_superpixels_op([a.detach() for a in assignments], list(size), list(crop))
    with torch.no_grad():
        return torch_kernels.hard_superpixels(assignments, size, crop)


# ---------------------------------------------------------------------------
# Torch ops of the no-grad Triton paths: torch.compile and CUDA graphs see one
# op each (with a fake implementation for tracing) instead of Python launch code.
# ---------------------------------------------------------------------------
@torch.library.custom_op('mmseg_spixreg::upsample_hierarchy', mutates_args=())
def _upsample_hierarchy_op(coarse: Tensor, assignments: List[Tensor]) -> Tensor:
    with triton_kernels().scope(coarse.device):
        return triton_kernels().upsample_levels(coarse, assignments)[0]


@_upsample_hierarchy_op.register_fake
def _(coarse: Tensor, assignments: List[Tensor]) -> Tensor:
    B, C = coarse.shape[:2]
    H, W = assignments[0].shape[-2:]
    return coarse.new_empty(B, C, H, W, dtype=_dtypes(coarse, *assignments)[0])


@torch.library.custom_op('mmseg_spixreg::hard_superpixels', mutates_args=())
def _hard_superpixels_op(assignments: List[Tensor], size: List[int], crop: List[int]) -> Tensor:
    with triton_kernels().scope(assignments[0].device):
        return triton_kernels().hard_superpixels(assignments, tuple(size), tuple(crop))


@_hard_superpixels_op.register_fake
def _(assignments: List[Tensor], size: List[int], crop: List[int]) -> Tensor:
    return assignments[0].new_empty(assignments[0].shape[0], size[0], size[1], dtype=torch.int64)


__all__ = [
    'BACKENDS', 'TRITON_ENV', 'auto_uses_triton', 'exporting', 'select_kernels', 'tracing',
    'superpixel_upsample', 'superpixel_downsample', 'superpixel_reconstruct',
    'neighbour_correlation', 'seed_softmax', 'hard_superpixels', 'superpixel_upsample_hierarchy'
]
