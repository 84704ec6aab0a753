# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernels of the Superpixel ops: plain Python functions that
:mod:`.launch` jits on first use (:func:`triton.jit`, compiled or run by
Triton's interpreter, chosen per launch); their launch code is there.

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
  grid is (tiles along W, tiles along H, images). The launch code checks the
  limits this implies before any launch (:func:`.launch.check_limits`).
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

Grid of every kernel: (tiles along W, tiles along H, B). Tensors are
contiguous (B, C, H, W) / (B, 9, H, W) / (B, C, H/2, W/2); H and W are the
fine grid of the kernel's assignment (even), h = H / 2, w = W / 2.
"""
import triton.language as tl


def upsample_kernel(coarse_ptr, assign_ptr, out_ptr, C, H, W, ACC: tl.constexpr,
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


def downsample_kernel(fine_ptr, assign_ptr, out_ptr, denom_ptr, other_ptr, bias_ptr, C, H, W,
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


def upsample2_kernel(coarse_ptr, assign2_ptr, assign1_ptr, mid_ptr, out_ptr, C, H1, W1,
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
    # upsample_kernel; owned are those under the interior (not the halo ring)
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


def correlation_kernel(g_ptr, u_ptr, f_ptr, s_ptr, bias_ptr, assign_ptr, den_ptr, out_ptr, so_ptr,
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
    in :func:`upsample_kernel`; the 9 accumulators are separate register
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


def hard_superpixels_kernel(assign1_ptr, assign2_ptr, out_ptr, H, W, OH, OW, CH, CW, scale_y,
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
