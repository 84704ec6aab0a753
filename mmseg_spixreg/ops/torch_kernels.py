# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The torch kernel set: every superpixel op written once, in plain tensor ops.

Implements the contractions of :mod:`.layout` (``upsample``, ``downsample``,
``correlation``) plus ``weighted_mean``, ``seed_mass``, ``channel_dot``,
``seed_softmax`` and ``hard_superpixels`` on tensors in the compute dtype,
with nothing but slices, padding, reshapes, element-wise ops, reductions,
``argmax`` and ``gather``. That makes this set at once

* the reference (any device; ``backend='torch'``, and ``'auto'`` unless the
  Triton kernels are enabled for CUDA tensors:
  :func:`.backends.auto_uses_triton`);
* the path an exporter traces (``torch.export`` / ``torch.onnx.export``:
  standard ONNX operators, symbolic even grid sizes): the public ops of
  :mod:`.superpixel` call these functions directly while a model is exported
  or compiled, and through the autograd functions of :mod:`.functions`
  (hand-written, deterministic backward: no scatter, no atomics) otherwise.

The formulation: the coarse map is zero-padded by one cell, so the seed
``(dy, dx)`` of every fine pixel is one slice of it (``seed_j(y, x) =
(y // 2 + dy, x // 2 + dx)``), and the four fine pixels of a coarse cell share
their seeds, so fine maps are handled as ``(B, C, H/2, 2, W/2, 2)`` views that
broadcast against the coarse slices. Out-of-map seeds read the zero padding
(zero features); contributions to them are dropped.

Each contraction is one function of a band of coarse rows (``_*_band``). Run
eagerly on CPU, the ops evaluate their maps band by band (:func:`_bands`: about
:data:`CPU_BAND_NUMEL` fine elements each), so that the nine seed passes of a
band run in the cache; anywhere else (other devices, and while a model is
exported or compiled: :func:`.backends.tracing`) the whole map is one band, so
the exported graph is the band function itself.
"""
import contextlib
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import backends  # circular (backends imports this module): used at call time only
from .layout import SEED_OFFSETS

#: Inputs of at most this many elements run single-threaded on CPU (:func:`scope`).
SINGLE_THREAD_NUMEL = 1 << 20
#: CPU, eager: fine-grid elements (images x channels x rows x columns) per band (:func:`_bands`;
#: 2 MiB in fp32, tuned with ``benchmarks/bench_ops.py``). Module-level so that tests can shrink
#: it to exercise the band borders.
CPU_BAND_NUMEL = 1 << 19


@contextlib.contextmanager
def scope(device: torch.device, numel: int = 0):
    """Context of one autograd ``forward``/``backward`` of the ops.

    On CPU, inputs of at most :data:`SINGLE_THREAD_NUMEL` elements (``numel``: the largest)
    run single-threaded: each op is then too short to gain from intra-op threads, and the
    thread barrier at its end stalls for a whole scheduler time slice whenever other
    processes compete for the cores. The thread setting is restored on exit.
    """
    threads = torch.get_num_threads()
    if device.type != 'cpu' or threads == 1 or numel > SINGLE_THREAD_NUMEL:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _bands(fine: Tensor, channels: int) -> List[Tuple[slice, int, int]]:
    """How an op on a fine map of ``fine``'s size is evaluated: ``(images, r0, r1)`` bands of
    coarse rows ``r0:r1`` (fine rows ``2 r0:2 r1``) of a few images each.

    Args:
        fine (Tensor): (B, *, H, W) fine map or assignment (only its shape and device are used).
        channels (int): Channels C of the fine map the op reads or writes.

    Returns:
        list: about :data:`CPU_BAND_NUMEL` fine elements per band on CPU when run eagerly;
        otherwise (other devices, or :func:`.backends.tracing`) the whole map as one band.
    """
    batch, _, height, width = fine.shape
    h = height // 2
    if fine.device.type != 'cpu' or backends.tracing():  # sizes may be symbolic
        return [(slice(None), 0, h)]
    row = channels * 2 * width  # fine elements of one coarse row of one image
    rows = max(1, min(h, CPU_BAND_NUMEL // max(row, 1)))
    images = max(1, min(batch, CPU_BAND_NUMEL // max(row * h, 1))) if rows == h else 1
    return [(slice(b0, min(b0 + images, batch)), r0, min(r0 + rows, h))
            for b0 in range(0, batch, images) for r0 in range(0, h, rows)]


def _pad(coarse: Tensor) -> Tensor:
    """(B, C, h, w) -> (B, C, h + 2, w + 2): the coarse map framed by one cell of zeros."""
    return F.pad(coarse, (1, 1, 1, 1))


def _seeds(padded: Tensor) -> Iterator[Tensor]:
    """The 9 seed maps of a band of coarse rows at fine-column resolution, in the channel
    order of an assignment.

    Args:
        padded (Tensor): (B, C, n + 2, w + 2): coarse rows ``r0 - 1 .. r0 + n`` of a map
            framed by :func:`_pad` (zeros outside the map).

    Yields:
        Tensor: for j = 0..8 (``(dy, dx) = SEED_OFFSETS[j]``) a (B, C, n, 1, 2w) view whose
        element ``(r, x)`` holds ``coarse[:, :, r0 + r + dy, x // 2 + dx]`` (0 outside the
        map): the seed ``j`` of fine pixels ``(2 (r0 + r), x)`` and ``(2 (r0 + r) + 1, x)``,
        ready to broadcast against the band's fine rows viewed as (B, C', n, 2, 2w)
        (:func:`_rows`). Every inner loop then runs over a contiguous row.
    """
    b, c, n2, w2 = padded.shape
    wide = padded[..., None].expand(b, c, n2, w2, 2).reshape(b, c, n2, 2 * w2)
    n, width = n2 - 2, 2 * w2 - 4
    for dy, dx in SEED_OFFSETS:
        yield wide[:, :, 1 + dy:1 + dy + n, None, 2 + 2 * dx:2 + 2 * dx + width]


def _rows(fine: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, 2, W): the two fine rows of each coarse row (a view)."""
    return fine.unflatten(2, (fine.shape[2] // 2, 2))


def _pixels(rows: Tensor) -> Tensor:
    """Inverse of :func:`_rows`: (B, C, h, 2, W) -> (B, C, 2h, W)."""
    b, c, h, _, width = rows.shape
    return rows.reshape(b, c, 2 * h, width)


def _gather_seeds(contributions: Iterable[Tuple[Tensor, Tensor]]) -> Tensor:
    """``out[:, :, s] = sum_j (values_j * weights_j)[:, :, s - (dy_j, dx_j)]``, summed over the
    four pixels of each cell: what the pixels of every cell of a band give to each of their 9
    seeds, collected on the seed grid (the adjoint of :func:`_seeds`), accumulated in place.

    Args:
        contributions (Iterable[tuple]): for the 9 seeds in order, ``(values, weights)`` pairs
            of (B, C, n, 2, 2w) and (B, 1, n, 2, 2w) tensors (broadcast), the weighted values
            ``values * weights`` of the two fine rows of every coarse row that its pixels give
            to their seed ``j``.

    Returns:
        Tensor: (B, C, n + 2, w + 2), framed as :func:`_pad`: seed rows ``r0 - 1 .. r0 + n``
        and columns ``-1 .. w`` (the frame holds the contributions to out-of-map seeds and to
        the neighbouring bands' rows).
    """
    padded = None
    for (dy, dx), (values, weights) in zip(SEED_OFFSETS, contributions):
        b, c, n, _, width = torch.broadcast_shapes(values.shape, weights.shape)
        if padded is None:
            padded = values.new_zeros(b, c, n + 2, width + 4)
        target = padded[:, :, 1 + dy:1 + dy + n, 2 + 2 * dx:2 + 2 * dx + width]
        target.addcmul_(values[:, :, :, 0], weights[:, :, :, 0])
        target.addcmul_(values[:, :, :, 1], weights[:, :, :, 1])
    b, c, n2, width4 = padded.shape
    return padded.unflatten(3, (width4 // 2, 2)).sum(-1)


def _unframe(padded: Tensor) -> Tensor:
    """(B, C, h + 2, w + 2) -> (B, C, h, w): the inside of a frame of :func:`_gather_seeds`."""
    return padded[:, :, 1:padded.shape[2] - 1, 1:padded.shape[3] - 1]


def valid_seeds(coarse: Tensor) -> Tensor:
    """Which seeds of each fine pixel lie inside the coarse map (as
    :func:`.layout.valid_seed_mask`, from the shape of ``coarse`` only, so it stays
    symbolic under an exporter).

    Args:
        coarse (Tensor): (B, C, h, w) coarse map (only its shape, dtype and device are used).

    Returns:
        Tensor: bool (1, 9, 2h, 2w).
    """
    ones = torch.ones_like(coarse[:1, :1])
    seeds = [seed.expand(-1, -1, -1, 2, -1) for seed in _seeds(_pad(ones))]
    return _pixels(torch.cat(seeds, dim=1)) > 0


def _upsample_band(padded: Tensor, assign: Tensor) -> Tensor:
    """:func:`upsample` of a band: ``padded`` (B, C, n + 2, w + 2) (:func:`_seeds`), ``assign``
    (B, 9, 2n, 2w) -> (B, C, 2n, 2w)."""
    weights = _rows(assign)
    fine = None
    for j, seed in enumerate(_seeds(padded)):
        fine = weights[:, :1] * seed if fine is None else fine.addcmul_(weights[:, j:j + 1], seed)
    return _pixels(fine)


def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """fine[y, x] = sum_j assign[j, y, x] * coarse[seed_j(y, x)] (eq. 2).

    Args:
        coarse (Tensor): (B, C, h, w).
        assign (Tensor): (B, 9, 2h, 2w).
        out (Tensor, optional): (B, C, 2h, 2w) tensor to write the result to (must not
            overlap the inputs).

    Returns:
        Tensor: (B, C, 2h, 2w).
    """
    padded, bands = _pad(coarse), _bands(assign, coarse.shape[1])
    if len(bands) == 1:
        fine = _upsample_band(padded, assign)
        return fine if out is None else out.copy_(fine)
    if out is None:
        out = coarse.new_empty(coarse.shape[:2] + assign.shape[2:])
    for images, r0, r1 in bands:
        out[images, :, 2 * r0:2 * r1] = _upsample_band(padded[images, :, r0:r1 + 2],
                                                       assign[images, :, 2 * r0:2 * r1])
    return out


def _downsample_band(fine: Tensor, assign: Tensor) -> Tensor:
    """:func:`downsample` of a band: ``fine`` (B, C, 2n, W), ``assign`` (B, 9, 2n, W) -> the
    framed (B, C, n + 2, W/2 + 2) sums of :func:`_gather_seeds`."""
    rows, weights = _rows(fine), _rows(assign)
    return _gather_seeds((rows, weights[:, j:j + 1]) for j in range(9))


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """coarse[s] = sum over (y, x, j) with seed_j(y, x) = s of A[j,y,x] f[y,x].

    The adjoint of :func:`upsample` in its first argument.

    Args:
        fine (Tensor): (B, C, H, W).
        assign (Tensor): (B, 9, H, W).
        out (Tensor, optional): (B, C, H/2, W/2) tensor to write the result to.

    Returns:
        Tensor: (B, C, H/2, W/2). Contributions to out-of-map seeds are dropped.
    """
    bands = _bands(fine, fine.shape[1])
    if len(bands) == 1:
        result = _unframe(_downsample_band(fine, assign))
        return result.contiguous() if out is None else out.copy_(result)
    b, c, height, width = fine.shape
    h = height // 2
    out = fine.new_zeros(b, c, h, width // 2) if out is None else out.zero_()
    for images, r0, r1 in bands:
        framed = _downsample_band(fine[images, :, 2 * r0:2 * r1], assign[images, :, 2 * r0:2 * r1])
        lo, hi = max(r0 - 1, 0), min(r1 + 1, h)  # the band's seed rows inside the map
        out[images, :, lo:hi] += framed[:, :, lo - r0 + 1:hi - r0 + 1, 1:-1]
    return out


def _correlation_band(fine: Tensor, padded: Tensor, bias: Optional[Tensor]) -> Tensor:
    """:func:`correlation` of a band: ``fine`` (B, C, 2n, 2w), ``padded`` (B, C, n + 2, w + 2)
    and ``bias`` (B, 1, n + 2, w + 2) or None, framed as :func:`_seeds` -> (B, 9, 2n, 2w)."""
    rows = _rows(fine)
    dots = [(rows * seed).sum(1, keepdim=True) for seed in _seeds(padded)]
    if bias is not None:
        dots = [dot - seed for dot, seed in zip(dots, _seeds(bias))]
    return _pixels(torch.cat(dots, dim=1))


def correlation(fine: Tensor,
                coarse: Tensor,
                bias: Optional[Tensor] = None,
                accumulate: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j(y, x)]> - bias[seed_j].

    The derivative of :func:`upsample` w.r.t. the assignment.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        bias (Tensor, optional): (B, 1, H/2, W/2), subtracted per seed.
        accumulate (Tensor, optional): (B, 9, H, W) tensor to add the result to in place (and
            return) instead of a new tensor.

    Returns:
        Tensor: (B, 9, H, W); exactly 0 for out-of-map seeds.
    """
    padded = _pad(coarse)
    framed_bias = None if bias is None else _pad(bias)
    bands = _bands(fine, fine.shape[1])
    if len(bands) == 1:
        out = _correlation_band(fine, padded, framed_bias)
        return out if accumulate is None else accumulate.add_(out)
    out = accumulate if accumulate is not None else fine.new_empty((fine.shape[0], 9) +
                                                                   fine.shape[2:])
    for images, r0, r1 in bands:
        part = _correlation_band(fine[images, :, 2 * r0:2 * r1], padded[images, :, r0:r1 + 2],
                                 None if bias is None else framed_bias[images, :, r0:r1 + 2])
        target = out[images, :, 2 * r0:2 * r1]
        target.add_(part) if accumulate is not None else target.copy_(part)
    return out


def seed_mass(assign: Tensor) -> Tensor:
    """Total assignment weight of every seed, sum A[j, y, x] over its pixels.

    Args:
        assign (Tensor): (B, 9, H, W).

    Returns:
        Tensor: (B, 1, H/2, W/2).
    """
    weights = _rows(assign)
    ones = torch.ones_like(weights[:1, :1, :1, :, :1])  # (1, 1, 1, 2, 1)
    return _unframe(_gather_seeds((ones, weights[:, j:j + 1]) for j in range(9)))


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors, as (B, 1, h, w)."""
    return (a * b).sum(1, keepdim=True)


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """Assignment-weighted mean of every seed and its normaliser.

    Args:
        fine (Tensor): (B, C, H, W).
        assign (Tensor): (B, 9, H, W).
        eps (float): Added to the seed mass.

    Returns:
        tuple: ``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))``.
    """
    denom = seed_mass(assign) + eps
    return downsample(fine, assign) / denom, denom


def seed_softmax(fine: Tensor, coarse: Tensor, tau: float) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        tau (float): Temperature.

    Returns:
        Tensor: (B, 9, H, W), exactly 0 on out-of-map seeds.
    """
    logits = correlation(fine, coarse) / tau
    return torch.softmax(logits.masked_fill(~valid_seeds(coarse), float('-inf')), dim=1)


def _seed_coordinates(j: Tensor, ys: Tensor, xs: Tensor) -> Tuple[Tensor, Tensor]:
    """:func:`.layout.seed_coordinates` for int64 tensors (all values >= 0)."""
    return torch.div(ys, 2, rounding_mode='floor') + torch.div(j, 3, rounding_mode='floor') - 1, \
        torch.div(xs, 2, rounding_mode='floor') + torch.remainder(j, 3) - 1


def hard_superpixels(assignments: Sequence[Tensor],
                     size: Optional[Sequence[int]] = None,
                     crop: Optional[Sequence[int]] = None) -> Tensor:
    """Hard superpixels: each level's argmax in-map seed followed down the hierarchy.

    Args:
        assignments (Sequence[Tensor]): finest first, e.g. [A4 (B, 9, H, W), A8 (B, 9, H/2,
            W/2)].
        size (Sequence[int], optional): (H', W') the (cropped) ids are nearest-resized to.
        crop (Sequence[int], optional): (h, w): keep the top-left h x w fine pixels.

    Returns:
        Tensor: int64 (B, H, W) (or (B, H', W')): per pixel the flat index ``sy * w_L + sx``
        of its seed on the coarsest grid ``(h_L, w_L) = (H / 2**L, W / 2**L)``.
    """
    best: List[Tensor] = []
    for assign in assignments:
        h, w = assign.shape[-2] // 2, assign.shape[-1] // 2
        valid = valid_seeds(assign[:, :1, :h, :w])
        best.append(assign.masked_fill(~valid, float('-inf')).argmax(dim=1))  # (B, H_l, W_l)
    first = best[0]
    ys = torch.ones_like(first).cumsum(dim=1) - 1  # row index of every finest pixel
    xs = torch.ones_like(first).cumsum(dim=2) - 1
    ys, xs = _seed_coordinates(first, ys, xs)
    for level in best[1:]:
        batch, width = level.shape[0], level.shape[-1]
        j = level.reshape(batch, -1).gather(1, (ys * width + xs).reshape(batch, -1))
        ys, xs = _seed_coordinates(j.reshape(ys.shape), ys, xs)
    ids = ys * (assignments[-1].shape[-1] // 2) + xs
    if crop is not None:
        ids = ids[:, :crop[0], :crop[1]]
    if size is not None:
        ids = _nearest_resize(ids, size)
    return ids


def _nearest_resize(ids: Tensor, size: Sequence[int]) -> Tensor:
    """``F.interpolate(ids, size, mode='nearest')`` of a (B, h, w) integer map, as a gather at
    the source index PyTorch's float32 kernel (and the Triton kernel) computes,
    ``min(floor(i * float32(h / H)), h - 1)``: exact for any id (ONNX Resize has no integer
    or float64 version)."""
    rows = _nearest_index(size[0], ids.shape[1], ids.device)
    cols = _nearest_index(size[1], ids.shape[2], ids.device)
    return ids.index_select(1, rows).index_select(2, cols)


def _nearest_index(out_size, in_size, device: torch.device) -> Tensor:
    scale = torch.full((), in_size, dtype=torch.float32, device=device) / out_size
    index = torch.floor(torch.arange(out_size, device=device).float() * scale).long()
    return index.clamp(max=in_size - 1)
