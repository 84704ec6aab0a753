# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Launch code of the kernels in :mod:`.kernels`: tile sizes, the limits
checked before any launch, the one launch point and a launcher per kernel.

The kernels are plain functions jitted on first use with :func:`triton.jit`
(:func:`_jit`): compiled for CUDA tensors, or run by Triton's interpreter
(CPU tensors included) when ``TRITON_INTERPRET=1`` is set at call time. The
choice is made per call, not frozen when a module is imported, so one process
can run both: an interpreted launch leaves ``triton.language`` exactly as it
found it (:func:`.interpreter.interpreted_launch`). Where ``triton`` itself
was imported with ``TRITON_INTERPRET=1`` set, its library is
interpreter-only for the whole process and a compiled launch is a
RuntimeError saying so.

CUDA allows at most 65535 blocks along y and z of a grid, and the kernels
address an image plane with int32 offsets: both limits are checked before any
launch (:func:`check_limits`, a ValueError naming the limit;
``backend='auto'`` falls back to the torch kernels there).
"""
import functools
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from .interpreter import interpreted_launch, library_interpreted_only
from .kernels import (correlation_kernel, downsample_kernel, hard_superpixels_kernel,
                      upsample2_kernel, upsample_kernel)

# Tile sizes (powers of two), module-level so that tests can shrink them to
# exercise the tile tails. In cells (coarse positions; a cell is 2x2 fine
# pixels): BLOCK_Y x BLOCK_X for the upsampling (and 2x that in fine pixels for
# the hard superpixels), CORR_BLOCK_Y x CORR_BLOCK_X for the correlation (9
# accumulators per pixel), SEED_BLOCK_Y x SEED_BLOCK_X seeds for the
# downsampling; the fused two-level upsampling works on FUSED_BLOCK_Y x
# FUSED_BLOCK_X pixels of the middle grid, of which the border ring is a halo
# recomputed by the neighbouring program. Chosen so that every launch
# configuration compiles for sm_90 without register spills (72-150 registers
# per thread; checked by tests/test_ops/test_triton_kernels.py).
BLOCK_Y = 4
BLOCK_X = 32
CORR_BLOCK_Y = 2
CORR_BLOCK_X = 32
SEED_BLOCK_Y = 4
SEED_BLOCK_X = 16
FUSED_BLOCK_Y = 16
FUSED_BLOCK_X = 16
NUM_WARPS = 4
FUSED_NUM_WARPS = 8
_INT32_MAX = 2**31 - 1
#: CUDA's limits on a launch grid: blocks along x, and along y and z.
GRID_X_MAX = 2**31 - 1
GRID_YZ_MAX = 65535


@functools.lru_cache(maxsize=None)
def _jitted(kernel: Callable, interpret: bool):
    # triton.jit reads TRITON_INTERPRET now: an InterpretedFunction when it
    # is set, a JITFunction (compiled on first launch) otherwise.
    del interpret  # part of the cache key only
    return triton.jit(kernel)


def _launch(kernel: Callable, grid: Tuple[int, ...], *args, **meta) -> None:
    """Launch ``kernel`` (compiled, or interpreted under TRITON_INTERPRET=1)."""
    interpret = bool(triton.knobs.runtime.interpret)
    if not interpret and library_interpreted_only():
        raise RuntimeError('triton kernels: `triton` was imported with TRITON_INTERPRET=1 set, so '
                           'its library (tl.sum, tl.zeros ...) runs only in the interpreter in '
                           'this process and cannot be compiled; run compiled (CUDA) launches in '
                           "a process that imports triton without TRITON_INTERPRET, or use "
                           "backend='torch'")
    jitted = _jitted(kernel, interpret)
    if not interpret:
        jitted[grid](*args, **meta)
        return
    with interpreted_launch():
        jitted[grid](*args, **meta)


def _jit(kernel: Callable):
    """``_jit(kernel)[grid](*args, **meta)``: the one launch point of the
    kernels (tests count launches here)."""
    return _Grid(kernel)


class _Grid:
    __slots__ = ('kernel', )

    def __init__(self, kernel: Callable):
        self.kernel = kernel

    def __getitem__(self, grid):
        return functools.partial(_launch, self.kernel, grid)


def accumulation_dtypes(*tensors: Tensor) -> Tuple[torch.dtype, tl.dtype]:
    """Accumulation dtype: float64 if any input is, else float32."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def result_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _shape(t) -> Tuple[int, ...]:
    return tuple(t.shape) if isinstance(t, Tensor) else tuple(int(n) for n in t)


def _min_block_rows() -> int:
    """The fewest rows of cells (coarse positions) a program of any kernel
    owns: the most tile rows any launch on a fine grid of ``2 h`` rows has is
    ``cdiv(h, _min_block_rows())``."""
    return min(BLOCK_Y, SEED_BLOCK_Y, CORR_BLOCK_Y, FUSED_BLOCK_Y - 2)


def check_limits(*tensors, out_size: Optional[Sequence[int]] = None) -> None:
    """Raise a ValueError naming the limit where the kernels cannot run
    ``tensors`` (4-D tensors, or their shapes): before any launch, for every
    kernel that the forward and backward passes of an op on them may launch.

    * int32 offsets inside an image: at most ``2**31 - 1`` elements per image
      of a tensor (``C * H * W``) and per assignment (``9 * H * W``); with
      ``out_size`` (the hard superpixels' output grid), ``H' * W'`` too. The
      per-image base is int64, so a batch may hold more.
    * CUDA's grid: at most 65535 blocks along y (tile rows: ``cdiv(H / 2,
      rows per tile)`` for a fine grid of H rows, the smallest tile of any
      kernel counted; ``cdiv(H', 2 * BLOCK_Y)`` for ``out_size``) and along z
      (one block per image: at most 65535 images), ``2**31 - 1`` along x.

    Args:
        *tensors (Tensor | Sequence[int]): (B, C, H, W) tensors or shapes.
        out_size (Sequence[int], optional): (H', W') of a hard-superpixel
            output.
    """
    rows = _min_block_rows()
    cols = min(BLOCK_X, SEED_BLOCK_X, CORR_BLOCK_X, FUSED_BLOCK_X - 2)
    for t in tensors:
        shape = _shape(t)
        if len(shape) != 4:
            raise ValueError(f'triton kernels: expected (B, C, H, W) tensors, got shape {shape}')
        B, C, H, W = shape
        if C * H * W > _INT32_MAX or 9 * H * W > _INT32_MAX:
            raise ValueError(f'triton kernels: a tensor of shape {shape} has more than 2**31 - 1 '
                             f'elements per image (the kernels address an image with int32); '
                             f"use backend='torch'")
        if B > GRID_YZ_MAX:
            raise ValueError(f'triton kernels: a batch of {B} images exceeds CUDA\'s grid limit '
                             f'of {GRID_YZ_MAX} blocks along z (one per image); split the batch '
                             f"or use backend='torch'")
        if triton.cdiv(H // 2, rows) > GRID_YZ_MAX:
            raise ValueError(f'triton kernels: a grid of {H} rows needs '
                             f'{triton.cdiv(H // 2, rows)} tiles along H, more than CUDA\'s grid '
                             f'limit of {GRID_YZ_MAX} blocks along y (at most '
                             f"{2 * rows * GRID_YZ_MAX} rows); use backend='torch'")
        if triton.cdiv(W // 2, cols) > GRID_X_MAX:  # implied by the int32 limit
            raise ValueError(f'triton kernels: a grid of {W} columns exceeds CUDA\'s grid limit '
                             f"of 2**31 - 1 blocks along x; use backend='torch'")
    if out_size is not None:
        oh, ow = (int(n) for n in out_size)
        if oh * ow > _INT32_MAX:
            raise ValueError(f'triton kernels: a hard-superpixel output of {oh}x{ow} has more than '
                             f'2**31 - 1 elements per image (int32 offsets); use '
                             f"backend='torch'")
        if triton.cdiv(oh, 2 * BLOCK_Y) > GRID_YZ_MAX:
            raise ValueError(f'triton kernels: a hard-superpixel output of {oh} rows needs '
                             f'{triton.cdiv(oh, 2 * BLOCK_Y)} tiles along H, more than CUDA\'s '
                             f'grid limit of {GRID_YZ_MAX} blocks along y; use '
                             f"backend='torch'")


def _tiles(height: int, width: int, batch: int, block_y: int, block_x: int):
    """The grid of a launch over ``height x width`` positions of ``batch``
    images in ``block_y x block_x`` tiles; a ValueError beyond CUDA's grid
    limits (:func:`check_limits` catches those earlier, for a whole op)."""
    grid = (triton.cdiv(width, block_x), triton.cdiv(height, block_y), batch)
    for axis, blocks, limit in zip('xyz', grid, (GRID_X_MAX, GRID_YZ_MAX, GRID_YZ_MAX)):
        if blocks > limit:
            raise ValueError(f'triton kernels: a launch grid of {grid} blocks exceeds CUDA\'s '
                             f'limit of {limit} blocks along {axis}; use backend=\'torch\'')
    return grid


def contiguous(t: Tensor) -> Tensor:
    return t if t.is_contiguous() else t.contiguous()


# ---------------------------------------------------------------------------
# One launcher per kernel: arguments from tensors, grid, tile sizes
# ---------------------------------------------------------------------------
def launch_upsample(coarse: Tensor, assign: Tensor, out: Tensor) -> Tensor:
    B, C, H, W = out.shape
    _jit(upsample_kernel)[_tiles(H // 2, W // 2, B, BLOCK_Y, BLOCK_X)](
        coarse,
        assign,
        out,
        C,
        H,
        W,
        ACC=accumulation_dtypes(coarse, assign)[1],
        BLOCK_Y=BLOCK_Y,
        BLOCK_X=BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def launch_downsample(fine: Tensor,
                      assign: Tensor,
                      out: Tensor,
                      denom: Optional[Tensor] = None,
                      mass: bool = False,
                      eps: float = 0.0,
                      other: Optional[Tensor] = None,
                      bias: Optional[Tensor] = None) -> Tensor:
    B, C, H, W = fine.shape
    _jit(downsample_kernel)[_tiles(H // 2, W // 2, B, SEED_BLOCK_Y, SEED_BLOCK_X)](
        fine,
        assign,
        out,
        out if denom is None else denom,
        out if other is None else other,
        out if bias is None else bias,
        C,
        H,
        W,
        float(eps),
        MASS=mass,
        DIVIDE=denom is not None and not mass,
        DOT=bias is not None,
        ACC=accumulation_dtypes(fine, assign)[1],
        BLOCK_Y=SEED_BLOCK_Y,
        BLOCK_X=SEED_BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def launch_correlation(out: Tensor,
                       g: Optional[Tensor] = None,
                       u: Optional[Tensor] = None,
                       f: Optional[Tensor] = None,
                       s: Optional[Tensor] = None,
                       bias: Optional[Tensor] = None,
                       assign: Optional[Tensor] = None,
                       den: Optional[Tensor] = None,
                       so: Optional[Tensor] = None,
                       bo: Optional[Tensor] = None,
                       softmax_scale: Optional[float] = None,
                       norm_eps: Optional[float] = None) -> Tensor:
    fine = g if g is not None else f
    B, C, H, W = fine.shape
    inputs = [t for t in (g, u, f, s, bias, assign, den) if t is not None]
    _jit(correlation_kernel)[_tiles(H // 2, W // 2, B, CORR_BLOCK_Y, CORR_BLOCK_X)](
        fine if g is None else g,
        fine if u is None else u,
        fine if f is None else f,
        fine if s is None else s,
        fine if bias is None else bias,
        fine if assign is None else assign,
        fine if den is None else den,
        out,
        out if so is None else so,
        out if bo is None else bo,
        C,
        H,
        W,
        1.0 if softmax_scale is None else float(softmax_scale),
        1.0 if norm_eps is None else float(norm_eps),
        HAS_G=g is not None,
        HAS_S=s is not None,
        HAS_BIAS=bias is not None,
        UPSAMPLE_S=so is not None,
        DIVIDE=den is not None,
        SOFTMAX=softmax_scale is not None,
        NORMALISE=norm_eps is not None,
        ACC=accumulation_dtypes(*inputs)[1],
        BLOCK_Y=CORR_BLOCK_Y,
        BLOCK_X=CORR_BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def launch_upsample2(coarse: Tensor, assign2: Tensor, assign1: Tensor, mid: Tensor,
                     out: Tensor) -> Tensor:
    B, C, H1, W1 = mid.shape
    _jit(upsample2_kernel)[_tiles(H1, W1, B, FUSED_BLOCK_Y - 2, FUSED_BLOCK_X - 2)](
        coarse,
        assign2,
        assign1,
        mid,
        out,
        C,
        H1,
        W1,
        ACC=accumulation_dtypes(coarse, assign2, assign1)[1],
        BLOCK_Y=FUSED_BLOCK_Y,
        BLOCK_X=FUSED_BLOCK_X,
        num_warps=FUSED_NUM_WARPS)
    return out


def launch_hard_superpixels(a1: Tensor, a2: Tensor, out: Tensor, crop: Tuple[int, int],
                            two: bool) -> Tensor:
    """Hard superpixels of ``a1`` (and ``a2`` if ``two``) into ``out`` (B, H', W'),
    from the top-left ``crop`` of the fine grid (resized when it differs)."""
    B, _, H, W = a1.shape
    oh, ow = out.shape[-2:]
    ch, cw = crop
    resize = (oh, ow) != (H, W) or (ch, cw) != (H, W)
    _jit(hard_superpixels_kernel)[_tiles(oh, ow, B, 2 * BLOCK_Y, 2 * BLOCK_X)](
        a1,
        a2,
        out,
        H,
        W,
        oh,
        ow,
        ch,
        cw,
        float(np.float32(ch) / np.float32(oh)),
        float(np.float32(cw) / np.float32(ow)),
        TWO=two,
        RESIZE=resize,
        ACC=accumulation_dtypes(a1, a2)[1],
        BLOCK_Y=2 * BLOCK_Y,
        BLOCK_X=2 * BLOCK_X,
        num_warps=NUM_WARPS)
    return out
