# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernel set: kernels shaped for the memory system, for GPUs.

Same interface as :mod:`.torch_kernels` (``upsample``, ``downsample``,
``weighted_mean``, ``correlation``, ``seed_softmax``, ``channel_dot``,
``scope``) plus the fused chains ``reconstruct_forward`` /
``reconstruct_backward`` (q(x, A) of eq. 3), ``upsample_levels`` (the
upsamplings of a hierarchy) and ``hard_superpixels``; the contractions are
those of :mod:`.layout`.

How the kernels are shaped:

* **2-D tiles contiguous along W.** A program owns a ``BLOCK_Y x BLOCK_X``
  tile of output positions (fine pixels, or coarse seeds for the
  downsampling); rows and columns are separate index vectors, so every load
  and store of a fine-grid tensor is contiguous along W (vectorised
  ``ld.global.v2``/``v4`` when W allows it) and a seed address is
  ``(y // 2 + dy) * w + x // 2 + dx`` with no division of a flat index.
* **9 unrolled taps.** The 3x3 seeds are 9 separate register tiles
  (``tl.static_range``): plain FMAs, no padded 16-row seed axis, no
  reductions over seeds.
* **Assignment in registers.** The 9 assignment tiles of a program are loaded
  once, before the channel loop, and reused for every channel; the seed mass
  of the weighted mean comes from those same tiles (no separate pass).
* **int32 offsets** inside an image plane, the per-image base in int64; the
  grid is (tiles along W, tiles along H, images), and CUDA allows at most
  65535 blocks along y and z. Both limits are checked before any launch
  (:func:`check_limits`, a ValueError naming the limit; ``backend='auto'``
  falls back to the torch kernels there).
* **Scalars** (``eps``, ``1 / tau``, ``normalize_eps``) are float64 kernel
  parameters converted to the accumulation dtype inside the kernel, so a
  float64 run keeps them in float64 (Triton passes a plain Python float as a
  32-bit parameter).
* **Dtypes.** Loads are converted to the accumulation type (float32, or
  float64 for float64 inputs); results are stored in the dtype of the result
  (the promoted input dtype, e.g. bfloat16), so no conversion pass follows.
* **Deterministic.** Every kernel is a gather; the downsampling (the adjoint
  of the gather of eq. 2, a scatter onto the seeds) is written as a gather
  too: seed ``s`` collects, for each of its 9 offsets ``d_j``, the 2x2 fine
  pixels of the cell ``s - d_j``. No atomics.

q(x, [A4, A8]) forward + backward is 7 launches (see
:func:`reconstruct_forward`, :func:`reconstruct_backward`), with no torch
operation between them.

The kernels are plain functions jitted on first use with :func:`triton.jit`
(:func:`_jit`): compiled for CUDA tensors, or run by Triton's interpreter
(CPU tensors included) when ``TRITON_INTERPRET=1`` is set at call time. The
choice is made per call, not frozen when this module is imported, so one
process can run both: an interpreted launch leaves ``triton.language`` exactly
as it found it (:func:`_interpreted_launch`; Triton's interpreter patches it
and, for the library functions a kernel calls, does not restore it, which
broke every later compile). Where ``triton`` itself was imported with
``TRITON_INTERPRET=1`` set, its library is interpreter-only for the whole
process and a compiled launch is a RuntimeError saying so.
"""
import contextlib
import functools
import sys
import types
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

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


# ---------------------------------------------------------------------------
# Kernels. Grid: (tiles along W, tiles along H, B). Tensors are contiguous
# (B, C, H, W) / (B, 9, H, W) / (B, C, H/2, W/2); H and W are the fine grid
# of the kernel's assignment (even), h = H / 2, w = W / 2.
# ---------------------------------------------------------------------------
def _upsample_kernel(coarse_ptr, assign_ptr, out_ptr, C, H, W, ACC: tl.constexpr,
                     BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr):
    """out[b, c, y, x] = sum_j A[b, j, y, x] * coarse[b, c, seed_j(y, x)].

    A program owns BLOCK_Y x BLOCK_X cells (coarse positions) and their 2x2
    fine pixels, as 4-D ``(BLOCK_Y, 2, BLOCK_X, 2)`` tiles (cell row, pixel
    row in the cell, cell column, pixel column in the cell): a seed value is
    gathered once per cell and tap and serves the cell's 4 pixels.
    """
    b = tl.program_id(2).to(tl.int64)
    cy = (tl.program_id(1) * BLOCK_Y + tl.arange(0, BLOCK_Y))[:, None, None, None]
    cx = (tl.program_id(0) * BLOCK_X + tl.arange(0, BLOCK_X))[None, None, :, None]
    h = H // 2
    w = W // 2
    HW = H * W
    pix = (cy < h) & (cx < w)
    off = (2 * cy + tl.arange(0, 2)[None, :, None, None]) * W + 2 * cx + tl.arange(0, 2)[None, None,
                                                                                         None, :]
    a_base = assign_ptr + b * 9 * HW
    taps = ()
    for j in tl.static_range(9):
        sy = cy + (j // 3 - 1)
        sx = cx + (j % 3 - 1)
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        taps = taps + (tl.load(a_base + j * HW + off, mask=pix & inside, other=0.0).to(ACC), )
    c_base = coarse_ptr + b * C * (h * w)
    o_base = out_ptr + b * C * HW
    for _ in range(C):
        acc = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
        for j in tl.static_range(9):
            sy = cy + (j // 3 - 1)
            sx = cx + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            v = tl.load(c_base + sy * w + sx, mask=inside, other=0.0)
            acc += taps[j] * v.to(ACC)
        tl.store(o_base + off, acc.to(out_ptr.dtype.element_ty), mask=pix)
        c_base += h * w
        o_base += HW


def _downsample_kernel(fine_ptr, assign_ptr, out_ptr, denom_ptr, other_ptr, bias_ptr, C, H, W,
                       eps: tl.float64, MASS: tl.constexpr, DIVIDE: tl.constexpr, DOT: tl.constexpr,
                       ACC: tl.constexpr, BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr):
    """out[b, c, s] = sum_j sum_{p in cell(s - d_j)} A[b, j, p] fine[b, c, p].

    MASS: the seed mass ``sum_j sum_p A[b, j, p] + eps`` (``eps``, a float64
    parameter, in the accumulation dtype) is computed from the same assignment
    tiles, stored to ``denom`` and divides ``out`` (the weighted mean);
    DIVIDE: ``out`` is divided by the given ``denom``; DOT: ``bias[b, s] =
    sum_c out[b, c, s] * other[b, c, s]`` is stored too.

    A program owns BLOCK_Y x BLOCK_X seeds; its fine tensors are 4-D
    ``(BLOCK_Y, 2, BLOCK_X, 2)`` (seed row, pixel row in the cell, seed
    column, pixel column in the cell), so the 2x2 cell sums are in-register
    reductions, done once per channel after the 9 taps.
    """
    b = tl.program_id(2).to(tl.int64)
    sy = tl.program_id(1) * BLOCK_Y + tl.arange(0, BLOCK_Y)
    sx = tl.program_id(0) * BLOCK_X + tl.arange(0, BLOCK_X)
    h = H // 2
    w = W // 2
    HW = H * W
    seeds = (sy < h)[:, None] & (sx < w)[None, :]
    s_off = sy[:, None] * w + sx[None, :]
    sy4 = sy[:, None, None, None]
    sx4 = sx[None, None, :, None]
    r4 = tl.arange(0, 2)[None, :, None, None]
    q4 = tl.arange(0, 2)[None, None, None, :]
    a_base = assign_ptr + b * 9 * HW
    taps = ()
    mass = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
    for j in tl.static_range(9):
        ty = sy4 - (j // 3 - 1)  # the cell whose seed j is s
        tx = sx4 - (j % 3 - 1)
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        a = tl.load(
            a_base + j * HW + (2 * ty + r4) * W + 2 * tx + q4, mask=inside, other=0.0).to(ACC)
        taps = taps + (a, )
        if MASS:
            mass += a
    if MASS:
        denom = tl.sum(tl.sum(mass, axis=3), axis=1) + tl.full([], eps, ACC)
        tl.store(denom_ptr + b * (h * w) + s_off, denom.to(denom_ptr.dtype.element_ty), mask=seeds)
    if DIVIDE:
        denom = tl.load(denom_ptr + b * (h * w) + s_off, mask=seeds, other=1.0).to(ACC)
    if DOT:
        bias = tl.zeros([BLOCK_Y, BLOCK_X], dtype=ACC)
    f_base = fine_ptr + b * C * HW
    o_base = out_ptr + b * C * (h * w)
    t_base = other_ptr + b * C * (h * w)
    for _ in range(C):
        acc = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
        for j in tl.static_range(9):
            ty = sy4 - (j // 3 - 1)
            tx = sx4 - (j % 3 - 1)
            inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            f = tl.load(f_base + (2 * ty + r4) * W + 2 * tx + q4, mask=inside, other=0.0)
            acc += taps[j] * f.to(ACC)
        out = tl.sum(tl.sum(acc, axis=3), axis=1)
        if MASS or DIVIDE:
            out = out / denom
        tl.store(o_base + s_off, out.to(out_ptr.dtype.element_ty), mask=seeds)
        if DOT:
            bias += out * tl.load(t_base + s_off, mask=seeds, other=0.0).to(ACC)
        f_base += HW
        o_base += h * w
        t_base += h * w
    if DOT:
        tl.store(bias_ptr + b * (h * w) + s_off, bias.to(bias_ptr.dtype.element_ty), mask=seeds)


def _upsample2_kernel(coarse_ptr, assign2_ptr, assign1_ptr, mid_ptr, out_ptr, C, H1, W1,
                      ACC: tl.constexpr, BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr):
    """Two upsamplings in one launch: mid = U(coarse, A2) on the middle grid
    (H1, W1), out = U(mid, A1) on the fine grid (2 H1, 2 W1); ``mid`` is
    stored (the backward pass of q uses it).

    A program computes ``mid`` on a BLOCK_Y x BLOCK_X tile of the middle grid
    whose border ring is a halo (the tiles overlap by 2 pixels: neighbouring
    programs recompute the same values bit for bit, so their stores agree),
    stores it, and after a block barrier gathers it back (from L1/L2) for the
    fine pixels of the tile's interior, which it owns.
    """
    b = tl.program_id(2).to(tl.int64)
    y0 = tl.program_id(1) * (BLOCK_Y - 2) - 1
    x0 = tl.program_id(0) * (BLOCK_X - 2) - 1
    H = 2 * H1
    W = 2 * W1
    h2 = H1 // 2
    w2 = W1 // 2
    HW = H * W
    HW1 = H1 * W1
    # middle grid tile (with halo)
    my = y0 + tl.arange(0, BLOCK_Y)
    mx = x0 + tl.arange(0, BLOCK_X)
    mid_in = ((my >= 0) & (my < H1))[:, None] & ((mx >= 0) & (mx < W1))[None, :]
    m_off = my[:, None] * W1 + mx[None, :]
    a2_base = assign2_ptr + b * 9 * HW1
    taps2 = ()
    for j in tl.static_range(9):
        sy = my // 2 + (j // 3 - 1)
        sx = mx // 2 + (j % 3 - 1)
        inside = ((sy >= 0) & (sy < h2))[:, None] & ((sx >= 0) & (sx < w2))[None, :]
        a = tl.load(a2_base + j * HW1 + m_off, mask=mid_in & inside, other=0.0).to(ACC)
        taps2 = taps2 + (a, )
    # fine tile: the 2x2 pixels of every middle pixel of the tile, 4-D as in
    # _upsample_kernel; owned are those under the interior (not the halo ring)
    cy = my[:, None, None, None]
    cx = mx[None, None, :, None]
    ly = tl.arange(0, BLOCK_Y)[:, None, None, None]
    lx = tl.arange(0, BLOCK_X)[None, None, :, None]
    own = ((ly >= 1) & (ly < BLOCK_Y - 1) & (cy >= 0) & (cy < H1) & (lx >= 1) & (lx < BLOCK_X - 1)
           & (cx >= 0) & (cx < W1))
    f_off = (2 * cy + tl.arange(0, 2)[None, :, None, None]) * W + 2 * cx + tl.arange(
        0, 2)[None, None, None, :]
    a1_base = assign1_ptr + b * 9 * HW
    taps1 = ()
    for j in tl.static_range(9):
        py = cy + (j // 3 - 1)
        px = cx + (j % 3 - 1)
        inside = (py >= 0) & (py < H1) & (px >= 0) & (px < W1)
        a = tl.load(a1_base + j * HW + f_off, mask=own & inside, other=0.0).to(ACC)
        taps1 = taps1 + (a, )
    c_base = coarse_ptr + b * C * (h2 * w2)
    m_base = mid_ptr + b * C * HW1
    o_base = out_ptr + b * C * HW
    for _ in range(C):
        mid = tl.zeros([BLOCK_Y, BLOCK_X], dtype=ACC)
        for j in tl.static_range(9):
            sy = my // 2 + (j // 3 - 1)
            sx = mx // 2 + (j % 3 - 1)
            inside = ((sy >= 0) & (sy < h2))[:, None] & ((sx >= 0) & (sx < w2))[None, :]
            v = tl.load(c_base + sy[:, None] * w2 + sx[None, :], mask=inside, other=0.0)
            mid += taps2[j] * v.to(ACC)
        tl.store(m_base + m_off, mid.to(mid_ptr.dtype.element_ty), mask=mid_in)
        tl.debug_barrier()  # the tile's mid values are visible to the whole block
        acc = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
        for j in tl.static_range(9):
            py = cy + (j // 3 - 1)
            px = cx + (j % 3 - 1)
            inside = own & (py >= 0) & (py < H1) & (px >= 0) & (px < W1)
            v = tl.load(m_base + py * W1 + px, mask=inside, other=0.0)
            acc += taps1[j] * v.to(ACC)
        tl.store(o_base + f_off, acc.to(out_ptr.dtype.element_ty), mask=own)
        c_base += h2 * w2
        m_base += HW1
        o_base += HW


def _correlation_kernel(g_ptr, u_ptr, f_ptr, s_ptr, bias_ptr, assign_ptr, den_ptr, out_ptr, so_ptr,
                        bo_ptr, C, H, W, scale: tl.float64, norm_eps: tl.float64,
                        HAS_G: tl.constexpr, HAS_S: tl.constexpr, HAS_BIAS: tl.constexpr,
                        UPSAMPLE_S: tl.constexpr, DIVIDE: tl.constexpr, SOFTMAX: tl.constexpr,
                        NORMALISE: tl.constexpr, ACC: tl.constexpr, BLOCK_Y: tl.constexpr,
                        BLOCK_X: tl.constexpr):
    """The gradient of an assignment, and what the same gathers give.

    ``out[b, j, y, x] = <g[b, :, y, x], u[b, :, seed_j]> (HAS_G)
    + <f[b, :, y, x], s[b, :, seed_j]> (HAS_S) - bias[b, seed_j] (HAS_BIAS)``
    (0 for out-of-map seeds), or its masked softmax over j after scaling by
    ``scale`` (SOFTMAX). UPSAMPLE_S: also ``so = U(s, A)`` (the gradient of
    the downsampling's input), divided by ``den`` (DIVIDE), with
    ``bo[b, y, x] = <so[b, :, y, x], f[b, :, y, x]>`` (DIVIDE): the next
    level's scaled gradient and bias in the same pass. NORMALISE (with HAS_G
    only): the products are cosine similarities, ``<g, u_j> / (max(|g|, eps)
    max(|u_j|, eps))`` (``F.normalize`` of both inputs folded in: the squared
    norms accumulate in the same channel loop). ``scale`` and ``norm_eps``
    are float64 parameters used in the accumulation dtype. Tiles of cells as
    in :func:`_upsample_kernel`; the 9 accumulators are separate register
    tiles.
    """
    b = tl.program_id(2).to(tl.int64)
    cy = (tl.program_id(1) * BLOCK_Y + tl.arange(0, BLOCK_Y))[:, None, None, None]
    cx = (tl.program_id(0) * BLOCK_X + tl.arange(0, BLOCK_X))[None, None, :, None]
    h = H // 2
    w = W // 2
    HW = H * W
    pix = (cy < h) & (cx < w)
    off = (2 * cy + tl.arange(0, 2)[None, :, None, None]) * W + 2 * cx + tl.arange(0, 2)[None, None,
                                                                                         None, :]
    acc = ()
    taps = ()
    norms = ()  # NORMALISE: squared norm of each tap's seed (per cell)
    gg = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
    for j in tl.static_range(9):
        acc = acc + (tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC), )
        if NORMALISE:
            norms = norms + (tl.zeros([BLOCK_Y, 1, BLOCK_X, 1], dtype=ACC), )
        if UPSAMPLE_S:
            sy = cy + (j // 3 - 1)
            sx = cx + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            a = tl.load(assign_ptr + b * 9 * HW + j * HW + off, mask=pix & inside, other=0.0)
            taps = taps + (a.to(ACC), )
    if DIVIDE:
        den = tl.load(den_ptr + b * HW + off, mask=pix, other=1.0).to(ACC)
        bo = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
    g_base = g_ptr + b * C * HW
    u_base = u_ptr + b * C * (h * w)
    f_base = f_ptr + b * C * HW
    s_base = s_ptr + b * C * (h * w)
    so_base = so_ptr + b * C * HW
    for _ in range(C):
        if HAS_G:
            gv = tl.load(g_base + off, mask=pix, other=0.0).to(ACC)
        if HAS_S:
            fv = tl.load(f_base + off, mask=pix, other=0.0).to(ACC)
        so = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
        new = ()
        new_norms = ()
        if NORMALISE:
            gg += gv * gv
        for j in tl.static_range(9):
            sy = cy + (j // 3 - 1)
            sx = cx + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            seed = sy * w + sx
            r = acc[j]
            if HAS_G:
                uv = tl.load(u_base + seed, mask=inside, other=0.0).to(ACC)
                r += gv * uv
                if NORMALISE:
                    new_norms = new_norms + (norms[j] + uv * uv, )
            if HAS_S:
                sv = tl.load(s_base + seed, mask=inside, other=0.0).to(ACC)
                r += fv * sv
                if UPSAMPLE_S:
                    so += taps[j] * sv
            new = new + (r, )
        acc = new
        if NORMALISE:
            norms = new_norms
        if UPSAMPLE_S:
            if DIVIDE:
                so = so / den
                bo += so * fv
            tl.store(so_base + off, so.to(so_ptr.dtype.element_ty), mask=pix)
        g_base += HW
        u_base += h * w
        f_base += HW
        s_base += h * w
        so_base += HW
    if DIVIDE:
        tl.store(bo_ptr + b * HW + off, bo.to(bo_ptr.dtype.element_ty), mask=pix)
    if NORMALISE:
        n_eps = tl.full([], norm_eps, ACC)
        g_norm = tl.maximum(tl.sqrt(gg), n_eps)
        cos = ()
        for j in tl.static_range(9):
            cos = cos + (acc[j] / (g_norm * tl.maximum(tl.sqrt(norms[j]), n_eps)), )
        acc = cos
    if SOFTMAX:
        scale_acc = tl.full([], scale, ACC)
        # a finite floor instead of -inf: lanes past the image stay NaN-free
        top = tl.full([BLOCK_Y, 2, BLOCK_X, 2], -1e30, dtype=ACC)
        logits = ()
        for j in tl.static_range(9):
            sy = cy + (j // 3 - 1)
            sx = cx + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            v = tl.where(inside, acc[j] * scale_acc, -1e30)
            top = tl.maximum(top, v)
            logits = logits + (v, )
        total = tl.zeros([BLOCK_Y, 2, BLOCK_X, 2], dtype=ACC)
        exps = ()
        for j in tl.static_range(9):
            sy = cy + (j // 3 - 1)
            sx = cx + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            e = tl.where(inside, tl.exp(logits[j] - top), 0.0)
            total += e
            exps = exps + (e, )
        total = tl.where(total > 0, total, 1.0)
    o_base = out_ptr + b * 9 * HW
    for j in tl.static_range(9):
        if SOFTMAX:
            r = exps[j] / total
        else:
            r = acc[j]
            if HAS_BIAS:
                sy = cy + (j // 3 - 1)
                sx = cx + (j % 3 - 1)
                inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
                r -= tl.load(bias_ptr + b * (h * w) + sy * w + sx, mask=inside, other=0.0).to(ACC)
        tl.store(o_base + j * HW + off, r.to(out_ptr.dtype.element_ty), mask=pix)


def _hard_superpixels_kernel(assign1_ptr, assign2_ptr, out_ptr, H, W, OH, OW, CH, CW, scale_y,
                             scale_x, TWO: tl.constexpr, RESIZE: tl.constexpr, ACC: tl.constexpr,
                             BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr):
    """Per fine pixel: its argmax in-map seed of A1 (first maximum, as
    ``torch.argmax``) and, with TWO, that seed's argmax seed of A2; stores
    the flat index of the last one on its grid. Validity is computed from
    the coordinates here (no mask tensor). The output grid is (OH, OW); with
    RESIZE, output pixel (Y, X) takes the fine pixel
    ``(min(floor(Y * scale_y), CH - 1), min(floor(X * scale_x), CW - 1))``
    (``F.interpolate(mode='nearest')`` of the top-left CH x CW crop, same
    float32 arithmetic), else (Y, X) itself."""
    b = tl.program_id(2).to(tl.int64)
    oy = tl.program_id(1) * BLOCK_Y + tl.arange(0, BLOCK_Y)
    ox = tl.program_id(0) * BLOCK_X + tl.arange(0, BLOCK_X)
    if RESIZE:
        y = tl.minimum(tl.floor(oy.to(tl.float32) * scale_y).to(tl.int32), CH - 1)
        x = tl.minimum(tl.floor(ox.to(tl.float32) * scale_x).to(tl.int32), CW - 1)
    else:
        y = oy
        x = ox
    h = H // 2
    w = W // 2
    HW = H * W
    pix = (oy < OH)[:, None] & (ox < OW)[None, :]
    off = y[:, None] * W + x[None, :]
    best = tl.full([BLOCK_Y, BLOCK_X], float('-inf'), dtype=ACC)
    py = tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
    px = tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
    for j in tl.static_range(9):
        sy = (y // 2 + (j // 3 - 1))[:, None] + tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
        sx = (x // 2 + (j % 3 - 1))[None, :] + tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        a = tl.load(assign1_ptr + b * 9 * HW + j * HW + off, mask=pix & inside, other=0.0)
        a = tl.where(inside, a.to(ACC), float('-inf'))
        better = a > best
        best = tl.where(better, a, best)
        py = tl.where(better, sy, py)
        px = tl.where(better, sx, px)
    if TWO:
        h2 = h // 2
        w2 = w // 2
        best = tl.full([BLOCK_Y, BLOCK_X], float('-inf'), dtype=ACC)
        qy = tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
        qx = tl.zeros([BLOCK_Y, BLOCK_X], dtype=tl.int32)
        for j in tl.static_range(9):
            sy = py // 2 + (j // 3 - 1)
            sx = px // 2 + (j % 3 - 1)
            inside = (sy >= 0) & (sy < h2) & (sx >= 0) & (sx < w2)
            a = tl.load(
                assign2_ptr + b * 9 * (h * w) + j * (h * w) + py * w + px,
                mask=pix & inside,
                other=0.0)
            a = tl.where(inside, a.to(ACC), float('-inf'))
            better = a > best
            best = tl.where(better, a, best)
            qy = tl.where(better, sy, qy)
            qx = tl.where(better, sx, qx)
        ids = qy * w2 + qx
    else:
        ids = py * w + px
    tl.store(out_ptr + b * OH * OW + oy[:, None] * OW + ox[None, :], ids.to(tl.int64), mask=pix)


# ---------------------------------------------------------------------------
# Launch machinery
# ---------------------------------------------------------------------------
# The functions of triton.language that the kernels call and that triton
# itself defines with @triton.jit (tl.where, tl.exp, tl.load ... are builtins).
_LIBRARY_FUNCTIONS = ('max', 'sum', 'zeros', 'maximum', 'minimum', 'sqrt')
_MISSING = object()


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


def _language_namespaces() -> List[object]:
    """Every module of ``triton.language`` (``tl``, ``tl.core``, ``tl.math``,
    ``tl.standard`` ...) and every class they define: what Triton's
    interpreter patches while it runs a kernel."""
    modules = [
        module for name, module in list(sys.modules.items())
        if isinstance(module, types.ModuleType) and (
            name == 'triton.language' or name.startswith('triton.language.'))
    ]
    classes = {}
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, type) and str(getattr(value, '__module__',
                                                       '')).startswith('triton.language'):
                classes[id(value)] = value
    return modules + list(classes.values())


def _snapshot_language() -> List[Tuple[object, dict]]:
    """``(namespace, copy of its __dict__)`` for :func:`_language_namespaces`."""
    return [(namespace, dict(vars(namespace))) for namespace in _language_namespaces()]


def _restore_language(snapshot: List[Tuple[object, dict]]) -> None:
    """Put every attribute of the namespaces in ``snapshot`` back to the very
    object it was, and remove what was added (a submodule imported meanwhile
    excepted: an import, not a patch).

    The interpreter runs its rewritten copies of library functions (``tl.sum``
    ...) in their module's namespace, to which it adds its own names once, on
    the first rewrite; those names are removed here, so the cached rewrites of
    the functions of these modules are dropped too (the next interpreted
    launch rewrites them again).
    """
    module_dicts = set()
    for namespace, saved in snapshot:
        current = vars(namespace)
        if isinstance(namespace, types.ModuleType):
            module_dicts.add(id(current))
        for name in [n for n in current if n not in saved]:
            value = current[name]
            if isinstance(value, types.ModuleType) and value.__name__ == (
                    f'{getattr(namespace, "__name__", "")}.{name}'):
                continue
            delattr(namespace, name)
        for name, value in saved.items():
            if current.get(name, _MISSING) is not value:
                setattr(namespace, name, value)
    from triton.runtime.interpreter import InterpretedFunction
    rewritten = getattr(InterpretedFunction, 'rewritten_fn', None)
    if isinstance(rewritten, dict):
        for fn in [f for f in rewritten if id(getattr(f, '__globals__', None)) in module_dicts]:
            del rewritten[fn]


@contextlib.contextmanager
def _interpreted_launch():
    """Around an interpreted launch: interpreted versions of the library
    functions the kernel calls, and ``triton.language`` exactly as before
    afterwards.

    * Triton decides when it is imported whether its own ``@triton.jit``
      library functions (``tl.sum``, ``tl.max``, ``tl.zeros``) are
      interpretable; if it was imported before ``TRITON_INTERPRET=1`` was set,
      an interpreted kernel calling them fails ("Cannot call @triton.jit'd
      outside of the scope of a kernel"). They are swapped for interpreted
      wrappers of the same Python functions for the duration of the launch.
    * Triton's interpreter replaces the builtins of ``triton.language`` (and
      of ``tl.core``, ``tl.tensor`` ...) by interpreter versions while it
      runs; it restores those of the kernel's own launch, but not those it
      patches for a library function the kernel calls (Triton 3.8:
      ``InterpretedFunction.__call__``). Left patched, ``tl.core`` made every
      later compile in the process fail (``'ir.value' object has no
      attribute 'dtype'`` at the first ``.to()``) unless the kernel was in
      Triton's on-disk cache. Every module of ``triton.language`` and every
      class it defines is snapshotted before the launch and restored after it
      (:func:`_restore_language`), whatever the Triton version patches.
    """
    from triton.runtime.interpreter import InterpretedFunction  # noqa: F401 (its imports first)
    from triton.runtime.jit import JITFunction
    snapshot = _snapshot_language()
    try:
        for name in _LIBRARY_FUNCTIONS:
            function = getattr(tl, name)
            if isinstance(function, JITFunction):
                setattr(tl, name, _interpreted(function))
        yield
    finally:
        _restore_language(snapshot)


@functools.lru_cache(maxsize=None)
def _library_interpreted_only() -> bool:
    """Whether ``triton`` was imported with ``TRITON_INTERPRET=1`` set: its own
    ``@triton.jit`` library functions are then interpreter-only (no compile
    can use them) for the life of the process."""
    return type(tl.standard.sum).__name__ == 'InterpretedFunction'


def _launch(kernel: Callable, grid: Tuple[int, ...], *args, **meta) -> None:
    """Launch ``kernel`` (compiled, or interpreted under TRITON_INTERPRET=1)."""
    interpret = bool(triton.knobs.runtime.interpret)
    if not interpret and _library_interpreted_only():
        raise RuntimeError('triton kernels: `triton` was imported with TRITON_INTERPRET=1 set, so '
                           'its library (tl.sum, tl.zeros ...) runs only in the interpreter in '
                           'this process and cannot be compiled; run compiled (CUDA) launches in '
                           "a process that imports triton without TRITON_INTERPRET, or use "
                           "backend='torch'")
    jitted = _jitted(kernel, interpret)
    if not interpret:
        jitted[grid](*args, **meta)
        return
    with _interpreted_launch():
        jitted[grid](*args, **meta)


def _jit(kernel: Callable):
    """``_jit(kernel)[grid](*args, **meta)``: the one launch point of this
    module (tests count launches here)."""
    return _Grid(kernel)


class _Grid:
    __slots__ = ('kernel', )

    def __init__(self, kernel: Callable):
        self.kernel = kernel

    def __getitem__(self, grid):
        return functools.partial(_launch, self.kernel, grid)


def _acc(*tensors: Tensor) -> Tuple[torch.dtype, tl.dtype]:
    """Accumulation dtype: float64 if any input is, else float32."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def _result(*tensors: Tensor) -> torch.dtype:
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


def _c(t: Tensor) -> Tensor:
    return t if t.is_contiguous() else t.contiguous()


# ---------------------------------------------------------------------------
# Launchers
# ---------------------------------------------------------------------------
def _launch_upsample(coarse: Tensor, assign: Tensor, out: Tensor) -> Tensor:
    B, C, H, W = out.shape
    _jit(_upsample_kernel)[_tiles(H // 2, W // 2, B, BLOCK_Y, BLOCK_X)](
        coarse,
        assign,
        out,
        C,
        H,
        W,
        ACC=_acc(coarse, assign)[1],
        BLOCK_Y=BLOCK_Y,
        BLOCK_X=BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def _launch_downsample(fine: Tensor,
                       assign: Tensor,
                       out: Tensor,
                       denom: Optional[Tensor] = None,
                       mass: bool = False,
                       eps: float = 0.0,
                       other: Optional[Tensor] = None,
                       bias: Optional[Tensor] = None) -> Tensor:
    B, C, H, W = fine.shape
    _jit(_downsample_kernel)[_tiles(H // 2, W // 2, B, SEED_BLOCK_Y, SEED_BLOCK_X)](
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
        ACC=_acc(fine, assign)[1],
        BLOCK_Y=SEED_BLOCK_Y,
        BLOCK_X=SEED_BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def _launch_correlation(out: Tensor,
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
    _jit(_correlation_kernel)[_tiles(H // 2, W // 2, B, CORR_BLOCK_Y, CORR_BLOCK_X)](
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
        ACC=_acc(*inputs)[1],
        BLOCK_Y=CORR_BLOCK_Y,
        BLOCK_X=CORR_BLOCK_X,
        num_warps=NUM_WARPS)
    return out


def _launch_upsample2(coarse: Tensor, assign2: Tensor, assign1: Tensor, mid: Tensor,
                      out: Tensor) -> Tensor:
    B, C, H1, W1 = mid.shape
    _jit(_upsample2_kernel)[_tiles(H1, W1, B, FUSED_BLOCK_Y - 2, FUSED_BLOCK_X - 2)](
        coarse,
        assign2,
        assign1,
        mid,
        out,
        C,
        H1,
        W1,
        ACC=_acc(coarse, assign2, assign1)[1],
        BLOCK_Y=FUSED_BLOCK_Y,
        BLOCK_X=FUSED_BLOCK_X,
        num_warps=FUSED_NUM_WARPS)
    return out


# ---------------------------------------------------------------------------
# The kernel-set interface (see torch_kernels for the same functions)
# ---------------------------------------------------------------------------
def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Eq. 2: (B, C, h, w), (B, 9, 2h, 2w) -> (B, C, 2h, 2w) in the promoted
    input dtype (into ``out`` if given)."""
    coarse, assign = _c(coarse), _c(assign)
    check_limits(coarse, assign)
    B, C, h, w = coarse.shape
    if out is None:
        out = coarse.new_empty(B, C, 2 * h, 2 * w, dtype=_result(coarse, assign))
    return _launch_upsample(coarse, assign, out)


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Adjoint of :func:`upsample` in its first argument (the weighted-mean
    numerator): (B, C, H, W), (B, 9, H, W) -> (B, C, H/2, W/2)."""
    fine, assign = _c(fine), _c(assign)
    check_limits(fine, assign)
    B, C, H, W = fine.shape
    if out is None:
        out = fine.new_empty(B, C, H // 2, W // 2, dtype=_result(fine, assign))
    return _launch_downsample(fine, assign, out)


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))`` in one
    launch; the mass in the accumulation dtype."""
    fine, assign = _c(fine), _c(assign)
    check_limits(fine, assign)
    B, C, H, W = fine.shape
    out = fine.new_empty(B, C, H // 2, W // 2, dtype=_result(fine, assign))
    denom = fine.new_empty(B, 1, H // 2, W // 2, dtype=_acc(fine, assign)[0])
    _launch_downsample(fine, assign, out, denom, mass=True, eps=eps)
    return out, denom


def correlation(fine: Tensor, coarse: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j]> - bias[seed_j]:
    (B, C, H, W), (B, C, H/2, W/2), bias (B, 1, H/2, W/2) -> (B, 9, H, W)."""
    fine, coarse = _c(fine), _c(coarse)
    check_limits(fine, coarse)
    B, _, H, W = fine.shape
    out = fine.new_empty(B, 9, H, W, dtype=_result(fine, coarse))
    return _launch_correlation(out, g=fine, u=coarse, bias=None if bias is None else _c(bias))


def seed_softmax(fine: Tensor,
                 coarse: Tensor,
                 tau: float,
                 norm_eps: Optional[float] = None) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``
    (out-of-map seeds exactly 0), fused in one launch: (B, 9, H, W) in the
    accumulation dtype. With ``norm_eps``, of the cosine similarities instead
    (``F.normalize(., eps=norm_eps)`` of both inputs, in the same launch)."""
    fine, coarse = _c(fine), _c(coarse)
    check_limits(fine, coarse)
    B, _, H, W = fine.shape
    out = fine.new_empty(B, 9, H, W, dtype=_acc(fine, coarse)[0])
    return _launch_correlation(out, g=fine, u=coarse, softmax_scale=1.0 / tau, norm_eps=norm_eps)


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors -> (B, 1, h, w), in
    their promoted dtype."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    return torch.linalg.vecdot(a.to(dtype), b.to(dtype), dim=1).unsqueeze(1)


def scope(device: torch.device):
    """Context of one autograd ``forward``/``backward``: Triton launches on
    the current CUDA device, so make it the inputs' one."""
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
    coarse = _c(coarse)
    assignments = [_c(a) for a in assignments]
    check_limits(coarse, *assignments)
    B, C = coarse.shape[:2]
    acc = _acc(coarse, *assignments)[0]
    result = _result(coarse, *assignments)
    levels = len(assignments)
    mids: List[Optional[Tensor]] = [None] * levels
    feat = coarse
    for lvl in range(levels - 1, 1, -1):  # the coarse levels one by one
        H, W = assignments[lvl].shape[-2:]
        feat = _launch_upsample(feat, assignments[lvl], coarse.new_empty(B, C, H, W, dtype=acc))
        mids[lvl - 1] = feat
    H, W = assignments[0].shape[-2:]
    out = coarse.new_empty(B, C, H, W, dtype=result)
    if levels == 1:
        _launch_upsample(feat, assignments[0], out)
    else:
        mid = coarse.new_empty(B, C, H // 2, W // 2, dtype=acc)
        _launch_upsample2(feat, assignments[1], assignments[0], mid, out)
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
    x = _c(x)
    assignments = [_c(a) for a in assignments]
    check_limits(x, *assignments)
    acc = _acc(x, *assignments)[0]
    B, C = x.shape[:2]
    means, denoms = [], []
    feat = x
    for assign in assignments:
        H, W = assign.shape[-2:]
        mean = x.new_empty(B, C, H // 2, W // 2, dtype=acc)
        denom = x.new_empty(B, 1, H // 2, W // 2, dtype=acc)
        _launch_downsample(feat, assign, mean, denom, mass=True, eps=eps)
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
    grad, x = _c(grad), _c(x)
    assignments = [_c(a) for a in assignments]
    levels = len(assignments)
    means = list(saved[:levels])
    denoms = list(saved[levels:2 * levels])
    mids = list(saved[2 * levels:])
    acc = _acc(grad, x, *assignments)[0]
    B, C = x.shape[:2]
    ups = mids + [means[-1]]  # ups[l - 1] = u_l
    gs = [grad]  # gs[l] = G_l
    for lvl in range(levels - 1):
        H, W = assignments[lvl].shape[-2:]
        gs.append(
            _launch_downsample(gs[-1], assignments[lvl],
                               x.new_empty(B, C, H // 2, W // 2, dtype=acc)))
    H, W = assignments[-1].shape[-2:]
    scaled = x.new_empty(B, C, H // 2, W // 2, dtype=acc)
    bias = x.new_empty(B, 1, H // 2, W // 2, dtype=acc)
    _launch_downsample(
        gs[-1], assignments[-1], scaled, denom=denoms[-1], other=means[-1], bias=bias)
    grad_a: List[Optional[Tensor]] = [None] * levels
    for lvl in range(levels - 1, -1, -1):  # level lvl + 1 in the docstring
        assign = assignments[lvl]
        H, W = assign.shape[-2:]
        fine = x if lvl == 0 else means[lvl - 1]
        grad_a[lvl] = assign.new_empty(B, 9, H, W)
        if lvl == 0:
            so = x.new_empty(B, C, H, W)
            _launch_correlation(
                grad_a[lvl], g=gs[0], u=ups[0], f=x, s=scaled, bias=bias, assign=assign, so=so)
            return so, grad_a
        so = x.new_empty(B, C, H, W, dtype=acc)
        bo = x.new_empty(B, 1, H, W, dtype=acc)
        _launch_correlation(
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
    a1 = _c(assignments[0])
    a2 = _c(assignments[-1])
    B, _, H, W = a1.shape
    ch, cw = crop if crop is not None else (H, W)
    oh, ow = size if size is not None else (ch, cw)
    check_limits(a1, out_size=(oh, ow))
    resize = (oh, ow) != (H, W) or (ch, cw) != (H, W)
    out = a1.new_empty(B, oh, ow, dtype=torch.int64)
    _jit(_hard_superpixels_kernel)[_tiles(oh, ow, B, 2 * BLOCK_Y, 2 * BLOCK_X)](
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
        TWO=len(assignments) == 2,
        RESIZE=resize,
        ACC=_acc(a1, a2)[1],
        BLOCK_Y=2 * BLOCK_Y,
        BLOCK_X=2 * BLOCK_X,
        num_warps=NUM_WARPS)
    return out
