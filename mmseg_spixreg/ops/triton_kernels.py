# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernel set: one fused kernel per contraction, for GPUs.

Same interface as :mod:`.torch_kernels` (``upsample``, ``downsample``,
``weighted_mean``, ``correlation``, ``seed_softmax``, ``channel_dot``,
``scope``); the contractions are those of :mod:`.layout`. Every kernel is a
*gather*: each program owns a block of output positions (fine pixels, or
coarse seeds for the downsampling), loops over channel blocks inside the
kernel and handles the 9 seeds as one masked ``(16, block)`` tile (rows 9..15
and out-of-map seeds masked), so there is no atomic and no Python loop over
seeds, blocks or channels: results are deterministic and one op is one launch.
The downsampling (the adjoint of the gather of eq. 2, a scatter onto the
seeds) is written as a gather too: seed ``s`` collects, for each of its 9
offsets ``d_j``, the 2x2 fine pixels of the cell ``s - d_j``. Loads are
converted to the accumulation type (float32, or float64 for float64 inputs),
so float16 / bfloat16 inputs accumulate in float32; outputs are allocated in
that accumulation type.

The kernels are plain functions jitted on first use with :func:`triton.jit`
(:func:`_jit`): compiled for CUDA tensors, or run by Triton's interpreter
(CPU tensors included) when ``TRITON_INTERPRET=1`` is set at call time. The
choice is made per call, not frozen when this module is imported, so one
process can run both (e.g. a test session in which some module imported
triton before the tests set ``TRITON_INTERPRET``; see
:func:`_interpreter_library`).
"""
import contextlib
import functools
from typing import Callable, Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

# Block sizes (powers of two): output positions per program and channels per
# inner-loop step; the downsampling gathers 4 pixels per seed and offset, so
# its tiles are smaller (sm_90 with 4 warps: ~95 registers per thread instead
# of 255 at 64 seeds x 8 channels; the gathers need 64-80). Module-level so
# that tests can shrink them to exercise the block boundaries.
BLOCK_PIXELS = 64
BLOCK_CHANNELS = 8
BLOCK_SEEDS = 32
BLOCK_SEED_CHANNELS = 4
NUM_WARPS = 4


# ---------------------------------------------------------------------------
# Kernels. Grid: (cdiv(positions, BLOCK_P or BLOCK_S), B). Tensors are
# contiguous (B, C, H, W) / (B, 9, H, W) / (B, C, h, w), H = 2h, W = 2w.
# ---------------------------------------------------------------------------
def _upsample_kernel(coarse_ptr, assign_ptr, out_ptr, C, h, w, ACC: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """out[b, c, y, x] = sum_j A[b, j, y, x] * coarse[b, c, seed_j(y, x)]."""
    b = tl.program_id(1).to(tl.int64)
    W = 2 * w
    HW = 4 * h * w
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    j = tl.arange(0, 16)
    sy = (p // W // 2)[None, :] + (j // 3 - 1)[:, None]  # (16, BLOCK_P)
    sx = (p % W // 2)[None, :] + (j % 3 - 1)[:, None]
    inside = ((j < 9)[:, None] & (p < HW)[None, :] & (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w))
    a = tl.load(
        assign_ptr + b * 9 * HW + j[:, None] * HW + p[None, :], mask=inside, other=0.0).to(ACC)
    seed = sy * w + sx
    cc = tl.arange(0, BLOCK_C)
    for c0 in range(0, C, BLOCK_C):
        cm = (c0 + cc) < C
        cv = tl.load(
            coarse_ptr + b * C * h * w + (c0 + cc)[:, None, None] * (h * w) + seed[None, :, :],
            mask=cm[:, None, None] & inside[None, :, :],
            other=0.0).to(ACC)
        acc = tl.sum(cv * a[None, :, :], axis=1)  # (BLOCK_C, BLOCK_P)
        tl.store(
            out_ptr + b * C * HW + (c0 + cc)[:, None] * HW + p[None, :],
            acc.to(out_ptr.dtype.element_ty),
            mask=cm[:, None] & (p < HW)[None, :])


def _downsample_kernel(fine_ptr, assign_ptr, out_ptr, denom_ptr, C, h, w, eps,
                       NORMALISE: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr,
                       BLOCK_S: tl.constexpr):
    """out[b, c, s] = sum_j sum_{p in cell(s - d_j)} A[b, j, p] fine[b, c, p];
    with NORMALISE, divided by denom[b, s] = sum_j sum_p A[b, j, p] + eps
    (also stored)."""
    b = tl.program_id(1).to(tl.int64)
    W = 2 * w
    HW = 4 * h * w
    s = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S)
    j = tl.arange(0, 16)
    # the cell (ty, tx) whose seed j is s
    ty = (s // w)[None, :] - (j // 3 - 1)[:, None]  # (16, BLOCK_S)
    tx = (s % w)[None, :] - (j % 3 - 1)[:, None]
    inside = ((j < 9)[:, None] & (s < h * w)[None, :] & (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w))
    a_rows = assign_ptr + b * 9 * HW + j[:, None] * HW
    if NORMALISE:
        mass = tl.zeros([BLOCK_S], dtype=ACC)
        for q in tl.static_range(4):
            pix = (2 * ty + q // 2) * W + 2 * tx + q % 2
            a = tl.load(a_rows + pix, mask=inside, other=0.0).to(ACC)
            mass += tl.sum(a, axis=0)
        denom = mass + eps
        tl.store(denom_ptr + b * h * w + s, denom, mask=s < h * w)
    cc = tl.arange(0, BLOCK_C)
    for c0 in range(0, C, BLOCK_C):
        cm = (c0 + cc) < C
        acc = tl.zeros([BLOCK_C, BLOCK_S], dtype=ACC)
        for q in tl.static_range(4):
            pix = (2 * ty + q // 2) * W + 2 * tx + q % 2
            a = tl.load(a_rows + pix, mask=inside, other=0.0).to(ACC)
            f = tl.load(
                fine_ptr + b * C * HW + (c0 + cc)[:, None, None] * HW + pix[None, :, :],
                mask=cm[:, None, None] & inside[None, :, :],
                other=0.0).to(ACC)
            acc += tl.sum(f * a[None, :, :], axis=1)
        if NORMALISE:
            acc = acc / denom[None, :]
        tl.store(
            out_ptr + b * C * h * w + (c0 + cc)[:, None] * (h * w) + s[None, :],
            acc.to(out_ptr.dtype.element_ty),
            mask=cm[:, None] & (s < h * w)[None, :])


def _correlation_kernel(fine_ptr, coarse_ptr, bias_ptr, out_ptr, C, h, w, scale,
                        HAS_BIAS: tl.constexpr, ACCUMULATE: tl.constexpr, SOFTMAX: tl.constexpr,
                        ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """r[b, j, y, x] = <fine[b, :, y, x], coarse[b, :, seed_j(y, x)]>
    - bias[b, seed_j(y, x)] (0 for out-of-map seeds); out = r, or out += r
    (ACCUMULATE), or out = masked softmax over j of r * scale (SOFTMAX)."""
    b = tl.program_id(1).to(tl.int64)
    W = 2 * w
    HW = 4 * h * w
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    j = tl.arange(0, 16)
    sy = (p // W // 2)[None, :] + (j // 3 - 1)[:, None]  # (16, BLOCK_P)
    sx = (p % W // 2)[None, :] + (j % 3 - 1)[:, None]
    inside = ((j < 9)[:, None] & (p < HW)[None, :] & (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w))
    seed = sy * w + sx
    cc = tl.arange(0, BLOCK_C)
    acc = tl.zeros([16, BLOCK_P], dtype=ACC)
    for c0 in range(0, C, BLOCK_C):
        cm = (c0 + cc) < C
        f = tl.load(
            fine_ptr + b * C * HW + (c0 + cc)[:, None] * HW + p[None, :],
            mask=cm[:, None] & (p < HW)[None, :],
            other=0.0).to(ACC)
        cv = tl.load(
            coarse_ptr + b * C * h * w + (c0 + cc)[:, None, None] * (h * w) + seed[None, :, :],
            mask=cm[:, None, None] & inside[None, :, :],
            other=0.0).to(ACC)
        acc += tl.sum(cv * f[:, None, :], axis=0)
    if HAS_BIAS:
        acc -= tl.load(bias_ptr + b * h * w + seed, mask=inside, other=0.0).to(ACC)
    out_ptrs = out_ptr + b * 9 * HW + j[:, None] * HW + p[None, :]
    out_mask = (j < 9)[:, None] & (p < HW)[None, :]
    if SOFTMAX:
        # a finite floor instead of -inf: lanes past the image stay NaN-free
        logits = tl.where(inside, acc * scale, -1e30)
        e = tl.exp(logits - tl.max(logits, axis=0)[None, :])
        e = tl.where(inside, e, 0.0)
        total = tl.sum(e, axis=0)
        acc = e / tl.where(total > 0, total, 1.0)[None, :]
    if ACCUMULATE:
        acc += tl.load(out_ptrs, mask=out_mask, other=0.0).to(ACC)
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=out_mask)


# ---------------------------------------------------------------------------
# Launchers (the kernel-set interface)
# ---------------------------------------------------------------------------
# The functions of triton.language that the kernels call and that triton
# itself defines with @triton.jit (tl.where, tl.exp, tl.load ... are builtins).
_LIBRARY_FUNCTIONS = ('max', 'sum', 'zeros')


@functools.lru_cache(maxsize=None)
def _jitted(kernel: Callable, interpret: bool):
    # triton.jit reads TRITON_INTERPRET now: an InterpretedFunction when it
    # is set, a JITFunction (compiled on first launch) otherwise.
    del interpret  # part of the cache key only
    return triton.jit(kernel)


@functools.lru_cache(maxsize=None)
def _interpreted(function: Callable):
    from triton.runtime.interpreter import InterpretedFunction
    return InterpretedFunction(function.fn)


@contextlib.contextmanager
def _interpreter_library():
    """While an interpreted kernel runs, interpreted versions of the library
    functions it calls.

    Triton decides when it is imported whether its own ``@triton.jit``
    library functions (``tl.sum``, ``tl.max``, ``tl.zeros``) are
    interpretable; if it was imported before ``TRITON_INTERPRET=1`` was set,
    an interpreted kernel calling them fails ("Cannot call @triton.jit'd
    outside of the scope of a kernel"). They are swapped for interpreted
    wrappers of the same Python functions for the duration of the launch and
    restored afterwards.
    """
    from triton.runtime.jit import JITFunction
    saved = {}
    for name in _LIBRARY_FUNCTIONS:
        function = getattr(tl, name)
        if isinstance(function, JITFunction):
            saved[name] = function
            setattr(tl, name, _interpreted(function))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(tl, name, function)


class _Launcher:
    """``_jit(kernel)[grid](*args, **meta)``: compiled or interpreted."""

    def __init__(self, kernel: Callable):
        self.interpret = bool(triton.knobs.runtime.interpret)
        self.jitted = _jitted(kernel, self.interpret)

    def __getitem__(self, grid):

        def launch(*args, **meta):
            if not self.interpret:
                return self.jitted[grid](*args, **meta)
            with _interpreter_library():
                return self.jitted[grid](*args, **meta)

        return launch


def _jit(kernel: Callable) -> _Launcher:
    return _Launcher(kernel)


def _acc_type(*tensors: Tensor) -> Tuple[torch.dtype, tl.dtype]:
    """Output (accumulation) dtype: float64 if any input is, else float32."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def _block_c(channels: int, block: int) -> int:
    return min(block, max(2, triton.next_power_of_2(channels)))


def _grid(positions: int, batch: int, block: int) -> Tuple[int, int]:
    return triton.cdiv(positions, block), batch


def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Eq. 2: (B, C, h, w), (B, 9, 2h, 2w) -> (B, C, 2h, 2w); ``out``
    (contiguous, accumulation dtype) receives the result if given."""
    B, C, h, w = coarse.shape
    dtype, acc = _acc_type(coarse, assign)
    if out is None:
        out = coarse.new_empty(B, C, 2 * h, 2 * w, dtype=dtype)
    _jit(_upsample_kernel)[_grid(4 * h * w, B, BLOCK_PIXELS)](
        coarse.contiguous(),
        assign.contiguous(),
        out,
        C,
        h,
        w,
        ACC=acc,
        BLOCK_C=_block_c(C, BLOCK_CHANNELS),
        BLOCK_P=BLOCK_PIXELS,
        num_warps=NUM_WARPS)
    return out


def _downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor],
                eps: Optional[float]) -> Tuple[Tensor, Optional[Tensor]]:
    B, C, H, W = fine.shape
    h, w = H // 2, W // 2
    dtype, acc = _acc_type(fine, assign)
    if out is None:
        out = fine.new_empty(B, C, h, w, dtype=dtype)
    denom = None if eps is None else fine.new_empty(B, 1, h, w, dtype=dtype)
    _jit(_downsample_kernel)[_grid(h * w, B, BLOCK_SEEDS)](
        fine.contiguous(),
        assign.contiguous(),
        out,
        out if denom is None else denom,
        C,
        h,
        w,
        0.0 if eps is None else float(eps),
        NORMALISE=eps is not None,
        ACC=acc,
        BLOCK_C=_block_c(C, BLOCK_SEED_CHANNELS),
        BLOCK_S=BLOCK_SEEDS,
        num_warps=NUM_WARPS)
    return out, denom


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Adjoint of :func:`upsample` in its first argument (the weighted-mean
    numerator): (B, C, H, W), (B, 9, H, W) -> (B, C, H/2, W/2)."""
    return _downsample(fine, assign, out, None)[0]


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))`` in one
    launch."""
    return _downsample(fine, assign, None, eps)


def _correlation(fine: Tensor, coarse: Tensor, bias: Optional[Tensor], out: Optional[Tensor],
                 softmax_scale: Optional[float]):
    B, C, H, W = fine.shape
    dtype, acc = _acc_type(fine, coarse)
    accumulate = out is not None
    if out is None:
        out = fine.new_empty(B, 9, H, W, dtype=dtype)
    _jit(_correlation_kernel)[_grid(H * W, B, BLOCK_PIXELS)](
        fine.contiguous(),
        coarse.contiguous(),
        out if bias is None else bias.contiguous(),
        out,
        C,
        H // 2,
        W // 2,
        1.0 if softmax_scale is None else float(softmax_scale),
        HAS_BIAS=bias is not None,
        ACCUMULATE=accumulate,
        SOFTMAX=softmax_scale is not None,
        ACC=acc,
        BLOCK_C=_block_c(C, BLOCK_CHANNELS),
        BLOCK_P=BLOCK_PIXELS,
        num_warps=NUM_WARPS)
    return out


def correlation(fine: Tensor,
                coarse: Tensor,
                bias: Optional[Tensor] = None,
                accumulate: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j]> - bias[seed_j]:
    (B, C, H, W), (B, C, H/2, W/2), bias (B, 1, H/2, W/2) -> (B, 9, H, W),
    added to ``accumulate`` (contiguous) in place when given."""
    return _correlation(fine, coarse, bias, accumulate, None)


def seed_softmax(fine: Tensor, coarse: Tensor, tau: float) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``
    (out-of-map seeds exactly 0), fused in one launch: (B, 9, H, W)."""
    return _correlation(fine, coarse, None, None, 1.0 / tau)


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors -> (B, 1, h, w)."""
    return torch.linalg.vecdot(a, b, dim=1).unsqueeze(1)


def scope(device: torch.device):
    """Context of one autograd ``forward``/``backward``: Triton launches on
    the current CUDA device, so make it the inputs' one."""
    if device.type == 'cuda':
        return torch.cuda.device(device)
    return contextlib.nullcontext()
