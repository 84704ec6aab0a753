# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The torch kernel set: blocked tensor ops, tuned for CPUs.

Implements the contractions of :mod:`.layout` (``upsample``, ``downsample``,
``correlation``) plus ``weighted_mean`` and ``channel_dot`` on plain tensors in
the compute dtype (no autograd). Each is evaluated block by block (a few dozen
coarse rows of one image at a time on CPU, so that the working set stays in
cache, with images spread over a small thread pool; large blocks on other
devices), with the coarse rows of a block widened to fine-column resolution so
that every inner loop runs over contiguous memory. No 3x3 unfold is ever
materialised. This is the ``backend='torch'`` path and ``'auto'``'s (CUDA
tensors get :mod:`.triton_kernels` under ``'auto'`` only where those are
enabled: :func:`.superpixel.auto_uses_triton`).
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from .layout import NUM_SEEDS, SEED_OFFSETS, valid_seed_mask

# Number of fine-grid elements (images x channels x rows x columns) handled
# per block. CPU: a block of this size (2 MiB in fp32) stays in the cache
# while its nine shifted contributions are accumulated, and the per-op
# overhead is still small (tuned with benchmarks/bench_ops.py). Other devices:
# few big blocks, so the number of kernel launches stays small. Module-level
# so that tests can shrink them to exercise the block boundaries.
CPU_BLOCK_NUMEL = 1 << 19
DEVICE_BLOCK_NUMEL = 1 << 22

_LOCAL = threading.local()


@contextlib.contextmanager
def scope(device: torch.device):
    """Context of one autograd ``forward``/``backward`` of the ops.

    On CPU, hand this thread's intra-op thread budget to the block pool.

    Inside the scope the calling thread runs its own (small) ops
    single-threaded and :func:`_run_blocks` spreads the heavy work over
    ``torch.get_num_threads()`` pool workers; the setting is restored on
    exit. Re-entrant; a no-op on other devices.
    """
    if device.type != 'cpu' or getattr(_LOCAL, 'threads', None):
        yield
        return
    threads = torch.get_num_threads()
    _LOCAL.threads = threads
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        _LOCAL.threads = None
        if threads > 1:
            torch.set_num_threads(threads)


# ---------------------------------------------------------------------------
# Blocked kernels (no autograd; plain tensors in the compute dtype)
# ---------------------------------------------------------------------------
def _blocks(batch: int, coarse_h: int, row_numel: int,
            device: torch.device) -> Tuple[int, int, List[Tuple]]:
    """Split (batch, coarse rows) into blocks of about the target size.

    Returns:
        tuple: ``(max_images, max_rows, blocks)`` where ``blocks`` is a list of
        ``(b0, b1, r0, r1)`` (images ``b0:b1``, coarse rows ``r0:r1``).
    """
    target = CPU_BLOCK_NUMEL if device.type == 'cpu' else DEVICE_BLOCK_NUMEL
    rows = max(1, min(coarse_h, target // max(row_numel, 1)))
    images = 1
    if rows == coarse_h:
        images = max(1, min(batch, target // max(row_numel * coarse_h, 1)))
    blocks = [(b0, min(b0 + images, batch), r0, min(r0 + rows, coarse_h))
              for b0 in range(0, batch, images) for r0 in range(0, coarse_h, rows)]
    return images, rows, blocks


def _halo(r0: int, r1: int, coarse_h: int) -> Tuple[int, int, int, int]:
    """Coarse rows ``lo:hi`` of block rows ``r0:r1`` plus a one-row halo,
    and where they sit (``i0:i1``) in a halo buffer whose row 0 is ``r0-1``."""
    lo, hi = max(r0 - 1, 0), min(r1 + 1, coarse_h)
    i0 = lo - (r0 - 1)
    return lo, hi, i0, i0 + hi - lo


def _load_wide(buf: Tensor, coarse: Tensor, b0: int, b1: int, r0: int, r1: int) -> None:
    """Copy coarse rows ``r0-1 : r1+1`` into ``buf`` at fine-column resolution.

    ``buf`` has shape (nb, C, R + 2, W + 4): buffer row ``i`` holds coarse row
    ``r0 - 1 + i`` and buffer columns ``2 + 2 * x``, ``3 + 2 * x`` both hold
    coarse column ``x``; rows/columns outside the coarse map are zero, so the
    seed ``(dy, dx)`` of all fine pixels of the block is the plain slice
    ``buf[:, :, 1 + dy:1 + dy + R, 2 + 2 * dx:2 + 2 * dx + W]``. The two
    leftmost and rightmost columns are zero from allocation and never written.
    """
    h, w = coarse.shape[-2:]
    lo, hi, i0, i1 = _halo(r0, r1, h)
    if i0 > 0:
        buf[:, :, :i0].zero_()
    if i1 < buf.shape[2]:
        buf[:, :, i1:].zero_()
    inner = buf[:, :, i0:i1, 2:2 * w + 2].unflatten(-1, (w, 2))
    inner.copy_(coarse[b0:b1, :, lo:hi].unsqueeze(-1))


def _seed_view(wide: Tensor, j: int, rows: int) -> Tensor:
    """Seed ``j`` of every fine pixel of a block, shape (nb, C, R, 1, W)."""
    dy, dx = SEED_OFFSETS[j]
    width = wide.shape[-1] - 4
    return wide[:, :, 1 + dy:1 + dy + rows, 2 + 2 * dx:2 + 2 * dx + width].unsqueeze(3)


def _run_blocks(work: Callable[[List[Tuple], tuple], None], make_buffers: Callable[[], tuple],
                blocks: List[Tuple], device: torch.device) -> None:
    """Run ``work(blocks, make_buffers())``, on CPU in parallel over images.

    On CPU, blocks of different images are handed to a pool of
    ``torch.get_num_threads()`` Python threads, each running its ops
    single-threaded (the GIL is released inside the ops). Intra-op
    parallelism would put a thread barrier at the end of each of the
    thousands of small block ops, which stalls for a whole scheduler time
    slice whenever another process competes for the cores; independent
    workers only meet once per kernel. Workers never share an image, so
    the halo rows that neighbouring blocks of one image both update in
    :func:`_downsample_kernel` are never written concurrently. Each worker
    gets its own scratch buffers, allocated here by the calling thread (so
    they come from its malloc arena instead of per-thread ones that would
    keep freed memory resident).
    """
    own_threads = torch.get_num_threads()
    threads = 1
    if device.type == 'cpu':
        threads = getattr(_LOCAL, 'threads', None) or own_threads
    images = sorted({blk[0] for blk in blocks})
    if threads <= 1 or len(images) <= 1:
        work(blocks, make_buffers())
        return
    workers = min(threads, len(images))
    group_of = {b: i * workers // len(images) for i, b in enumerate(images)}
    groups = [[] for _ in range(workers)]
    for blk in blocks:
        groups[group_of[blk[0]]].append(blk)

    def run(group: List[Tuple], buffers: tuple) -> None:
        torch.set_num_threads(1)  # this worker thread only (OpenMP ICV)
        with torch.no_grad():
            work(group, buffers)

    try:
        pool = _thread_pool(workers)
        jobs = [pool.submit(run, g, make_buffers()) for g in groups]
        errors = [job.exception() for job in jobs]  # waits for all of them
        for error in errors:
            if error is not None:
                raise error
    finally:
        # The workers also lowered PyTorch's global default; restore it.
        torch.set_num_threads(own_threads)


_POOL: Optional[ThreadPoolExecutor] = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool with ``workers`` threads (recreated on change)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE != workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix='spixreg_ops')
            _POOL_SIZE = workers
        return _POOL


def _forget_pool_after_fork() -> None:
    # The pool's threads do not exist in a forked child (e.g. a DataLoader
    # worker); it builds its own pool on first use.
    global _POOL, _POOL_SIZE, _POOL_LOCK
    _POOL, _POOL_SIZE, _POOL_LOCK = None, 0, threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def upsample(coarse: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """fine[y, x] = sum_j assign[j, y, x] * coarse[seed_j(y, x)].

    Args:
        coarse (Tensor): (B, C, h, w).
        assign (Tensor): (B, 9, 2h, 2w) (any strides).
        out (Tensor, optional): (B, C, 2h, 2w) tensor to write the result to
            (must not overlap the inputs).

    Returns:
        Tensor: (B, C, 2h, 2w), contiguous unless ``out`` is not.
    """
    B, C, h, w = coarse.shape
    W = 2 * w
    if out is None:
        out = coarse.new_empty(B, C, 2 * h, W)
    images, rows, blocks = _blocks(B, h, C * 2 * W, coarse.device)

    def make_buffers() -> tuple:
        return (coarse.new_zeros(images, C, rows + 2, W + 4), )

    def work(todo: List[Tuple], buffers: tuple) -> None:
        buf, = buffers
        for b0, b1, r0, r1 in todo:
            R = r1 - r0
            wide = buf[:b1 - b0, :, :R + 2]
            _load_wide(wide, coarse, b0, b1, r0, r1)
            o = out[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            a = assign[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            torch.mul(a[:, 0:1], _seed_view(wide, 0, R), out=o)
            for j in range(1, NUM_SEEDS):
                o.addcmul_(a[:, j:j + 1], _seed_view(wide, j, R))

    _run_blocks(work, make_buffers, blocks, coarse.device)
    return out


def downsample(fine: Tensor, assign: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """coarse[s] = sum over (y, x, j) with seed_j(y, x) = s of A[j,y,x] f[y,x].

    The adjoint of :func:`upsample` in its first argument.

    Args:
        fine (Tensor): (B, C, H, W) (any strides).
        assign (Tensor): (B, 9, H, W) (any strides).
        out (Tensor, optional): (B, C, H/2, W/2) tensor to write the result
            to (must not overlap the inputs).

    Returns:
        Tensor: (B, C, H/2, W/2), contiguous unless ``out`` is not.
        Contributions to out-of-map seeds are dropped.
    """
    B, C, H, W = fine.shape
    h, w = H // 2, W // 2
    if out is None:
        out = fine.new_zeros(B, C, h, w)
    else:
        out.zero_()
    images, rows, blocks = _blocks(B, h, C * 2 * W, fine.device)

    def make_buffers() -> tuple:
        return (fine.new_empty(images, C, rows + 2, W + 4), )

    def work(todo: List[Tuple], buffers: tuple) -> None:
        buf, = buffers
        for b0, b1, r0, r1 in todo:
            R = r1 - r0
            acc = buf[:b1 - b0, :, :R + 2]
            acc.zero_()
            f = fine[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            a = assign[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            for j in range(NUM_SEEDS):
                dst = _seed_view(acc, j, R).squeeze(3)
                for p in (0, 1):
                    dst.addcmul_(a[:, j:j + 1, :, p], f[:, :, :, p])
            lo, hi, i0, i1 = _halo(r0, r1, h)
            pairs = acc[:, :, i0:i1, 2:W + 2].unflatten(-1, (w, 2))
            out[b0:b1, :, lo:hi].add_(pairs[..., 0]).add_(pairs[..., 1])

    _run_blocks(work, make_buffers, blocks, fine.device)
    return out


def correlation(fine: Tensor,
                coarse: Tensor,
                bias: Optional[Tensor] = None,
                accumulate: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j(y, x)]> - bias[seed_j].

    The derivative of :func:`upsample` w.r.t. the assignment.

    Args:
        fine (Tensor): (B, C, H, W) (any strides).
        coarse (Tensor): (B, C, H/2, W/2).
        bias (Tensor, optional): (B, 1, H/2, W/2), subtracted per seed.
        accumulate (Tensor, optional): Contiguous (B, 9, H, W) tensor to add
            the result to in place (and return) instead of a new tensor.

    Returns:
        Tensor: (B, 9, H, W), contiguous; exactly 0 for out-of-map seeds.
    """
    B, C, H, W = fine.shape
    h = H // 2
    out = fine.new_empty(B, NUM_SEEDS, H, W) if accumulate is None \
        else accumulate
    images, rows, blocks = _blocks(B, h, C * 2 * W, fine.device)

    def make_buffers() -> tuple:
        return (fine.new_zeros(images, C, rows + 2, W + 4), fine.new_empty(images, C, rows, 2, W),
                None if accumulate is None else fine.new_empty(images, 1, rows, 2, W),
                None if bias is None else fine.new_zeros(images, 1, rows + 2, W + 4))

    def work(todo: List[Tuple], buffers: tuple) -> None:
        buf, tmp, acc, bias_buf = buffers
        for b0, b1, r0, r1 in todo:
            R = r1 - r0
            wide = buf[:b1 - b0, :, :R + 2]
            _load_wide(wide, coarse, b0, b1, r0, r1)
            if bias_buf is not None:
                bias_wide = bias_buf[:b1 - b0, :, :R + 2]
                _load_wide(bias_wide, bias, b0, b1, r0, r1)
            f = fine[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            o = out[b0:b1, :, 2 * r0:2 * r1].unflatten(2, (R, 2))
            t = tmp[:b1 - b0, :, :R]
            for j in range(NUM_SEEDS):
                torch.mul(f, _seed_view(wide, j, R), out=t)
                oj = o[:, j:j + 1]
                if acc is None:
                    torch.sum(t, dim=1, keepdim=True, out=oj)
                else:
                    a = acc[:b1 - b0, :, :R]
                    torch.sum(t, dim=1, keepdim=True, out=a)
                    oj.add_(a)
                if bias_buf is not None:
                    oj.sub_(_seed_view(bias_wide, j, R))

    _run_blocks(work, make_buffers, blocks, fine.device)
    return out


def seed_mass(assign: Tensor) -> Tensor:
    """Total assignment weight of every seed, sum A[j, y, x] over its pixels.

    Args:
        assign (Tensor): (B, 9, H, W).

    Returns:
        Tensor: (B, 1, H/2, W/2).
    """
    B, _, H, W = assign.shape
    h, w = H // 2, W // 2
    out = assign.new_zeros(B, 1, h, w)

    def work(todo: List[Tuple], buffers: tuple) -> None:
        for b0, b1, _, _ in todo:
            cell = assign[b0:b1].unflatten(3, (w, 2)).unflatten(2, (h, 2)).sum((3, 5))
            for j, (dy, dx) in enumerate(SEED_OFFSETS):
                sy, ty = _shift_slices(dy, h)
                sx, tx = _shift_slices(dx, w)
                out[b0:b1, :, ty, tx] += cell[:, j:j + 1, sy, sx]

    _run_blocks(work, tuple, [(b, b + 1, 0, h) for b in range(B)], assign.device)
    return out


def _shift_slices(d: int, n: int) -> Tuple[slice, slice]:
    """Cells ``src`` whose seed at offset ``d`` is inside, and those seeds."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n + min(0, d))


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors, image by image."""
    out = a.new_empty(a.shape[0], 1, *a.shape[2:])

    def work(todo: List[Tuple], buffers: tuple) -> None:
        for b0, b1, _, _ in todo:
            torch.sum(a[b0:b1] * b[b0:b1], dim=1, keepdim=True, out=out[b0:b1])

    _run_blocks(work, tuple, [(i, i + 1, 0, 0) for i in range(a.shape[0])], a.device)
    return out


def weighted_mean(fine: Tensor, assign: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """Assignment-weighted mean of every seed and its normaliser.

    Args:
        fine (Tensor): (B, C, H, W).
        assign (Tensor): (B, 9, H, W).
        eps (float): Added to the seed mass.

    Returns:
        tuple: ``(mean (B, C, H/2, W/2), mass + eps (B, 1, H/2, W/2))``.
    """
    denom = seed_mass(assign).add_(eps)
    return downsample(fine, assign).div_(denom), denom


def seed_softmax(fine: Tensor, coarse: Tensor, tau: float) -> Tensor:
    """Masked softmax over the 9 seeds of ``correlation(fine, coarse) / tau``.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).
        tau (float): Temperature.

    Returns:
        Tensor: (B, 9, H, W), exactly 0 on out-of-map seeds.
    """
    logits = correlation(fine, coarse).div_(tau)
    valid = valid_seed_mask(fine.shape[2], fine.shape[3], fine.device)
    return torch.softmax(logits.masked_fill_(~valid, float('-inf')), dim=1)
