# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Superpixel sampling operators of HCFCN (Suzuki, 2021).

Layout contract (shared by every function in this module)
---------------------------------------------------------
An assignment ``A`` of one hierarchy level is a tensor of shape
``(B, 9, H, W)`` on the *fine* grid (``H`` and ``W`` even). It relates every
fine pixel ``(y, x)`` to the 3x3 window of *seeds* (cells of the coarse
``(H/2, W/2)`` grid) around the coarse cell that contains the pixel::

    channel j = 3 * (dy + 1) + (dx + 1),   dy, dx in {-1, 0, 1}
    seed_j(y, x) = (y // 2 + dy, x // 2 + dx)

Seeds outside the coarse map carry weight 0 and each pixel's 9 weights sum to
1 (``SuperpixelAssignment`` produces exactly that). The operators treat
out-of-map seeds as zero features, so stray weight on them contributes nothing
and receives zero gradient.

All three operators are partial contractions of the same trilinear form
``T(f, A, c) = sum_{y,x,j} A[j,y,x] <f[:,y,x], c[:,seed_j(y,x)]>``:

* ``_upsample_kernel(c, A)``    = dT/df (eq. 2, gather),
* ``_downsample_kernel(f, A)``  = dT/dc (weighted-mean numerator, scatter),
* ``_correlation_kernel(f, c)`` = dT/dA (pixel-to-seed dot products),

so the backward pass of each operator is built from the other two. Each is
evaluated block by block (a few dozen coarse rows of one image at a time on
CPU, so that the working set stays in cache, with images spread over a small
thread pool; large blocks on accelerators), with the coarse rows of a block
widened to fine-column resolution so that every inner loop runs over
contiguous memory. No 3x3 unfold is ever materialised. The autograd functions
save only their inputs (plus the small coarse output of the weighted mean);
``superpixel_reconstruct`` is a single autograd node that recomputes its
coarse intermediates in backward and frees each as soon as it is used, so its
peak memory stays close to that of its output and gradients.
"""
import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

NUM_SEEDS = 9
# (dy, dx) of channel j, j = 3 * (dy + 1) + (dx + 1).
SEED_OFFSETS: Tuple[Tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))

# Number of fine-grid elements (images x channels x rows x columns) handled
# per block. CPU: a block of this size (2 MiB in fp32) stays in the cache
# while its nine shifted contributions are accumulated, and the per-op
# overhead is still small (tuned with benchmarks/bench_ops.py). Other devices:
# few big blocks, so the number of kernel launches stays small. Module-level
# so that tests can shrink them to exercise the block boundaries.
CPU_BLOCK_NUMEL = 1 << 19
DEVICE_BLOCK_NUMEL = 1 << 22


# ---------------------------------------------------------------------------
# Layout helpers (public)
# ---------------------------------------------------------------------------
def seed_coordinates(j: Union[int, Tensor], y: Union[int, Tensor],
                     x: Union[int, Tensor]) -> Tuple:
    """Coarse-grid coordinates of seed ``j`` of fine pixel ``(y, x)``.

    Args:
        j (int | Tensor): Channel index in ``[0, 9)`` of the assignment.
        y (int | Tensor): Fine-grid row(s).
        x (int | Tensor): Fine-grid column(s).

    Returns:
        tuple: ``(y // 2 + dy, x // 2 + dx)`` with ``dy = j // 3 - 1`` and
        ``dx = j % 3 - 1``. The coordinates may lie outside the coarse map
        (such seeds have weight 0). Works element-wise on integer tensors.
    """
    return y // 2 + j // 3 - 1, x // 2 + j % 3 - 1


def valid_seed_mask(height: int,
                    width: int,
                    device: Optional[torch.device] = None) -> Tensor:
    """Which of the 9 seeds of every fine pixel lie inside the coarse map.

    Args:
        height (int): Fine-grid height ``H`` (even).
        width (int): Fine-grid width ``W`` (even).
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: Bool tensor of shape (1, 9, H, W), True where
        ``seed_j(y, x)`` is inside the ``(H/2, W/2)`` coarse map.
    """
    _check_even(height, width, 'valid_seed_mask')
    h, w = height // 2, width // 2
    ys = torch.arange(height, device=device) // 2
    xs = torch.arange(width, device=device) // 2
    rows = [(ys + dy >= 0) & (ys + dy < h) for dy in (-1, 0, 1)]
    cols = [(xs + dx >= 0) & (xs + dx < w) for dx in (-1, 0, 1)]
    mask = torch.stack([
        rows[dy + 1][:, None] & cols[dx + 1][None, :]
        for dy, dx in SEED_OFFSETS
    ])
    return mask.unsqueeze(0)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def _check_even(height: int, width: int, where: str) -> None:
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise ValueError(f'{where}: the fine grid must have even height and '
                         f'width (>= 2), got {height}x{width}')


def _check_tensor(t, name: str, where: str) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f'{where}: `{name}` must be a torch.Tensor, got '
                         f'{type(t).__name__}')
    if t.dim() != 4:
        raise ValueError(f'{where}: `{name}` must be 4-D (B, C, H, W), got '
                         f'shape {tuple(t.shape)}')
    if not t.is_floating_point():
        raise ValueError(f'{where}: `{name}` must have a floating point '
                         f'dtype, got {t.dtype}')


def _check_assignment(assign, name: str, where: str) -> None:
    _check_tensor(assign, name, where)
    if assign.shape[1] != NUM_SEEDS:
        raise ValueError(f'{where}: `{name}` must have {NUM_SEEDS} channels '
                         f'(3x3 seeds), got shape {tuple(assign.shape)}')
    _check_even(assign.shape[2], assign.shape[3], f'{where} (`{name}`)')


def _check_same_batch_device(a: Tensor, b: Tensor, names: str,
                             where: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'{where}: batch sizes of {names} differ: '
                         f'{a.shape[0]} vs {b.shape[0]}')
    if a.device != b.device:
        raise ValueError(f'{where}: {names} are on different devices: '
                         f'{a.device} vs {b.device}')


def _check_fine_pair(fine: Tensor, assign: Tensor, fname: str, aname: str,
                     where: str) -> None:
    _check_same_batch_device(fine, assign, f'`{fname}` and `{aname}`', where)
    if fine.shape[-2:] != assign.shape[-2:]:
        raise ValueError(
            f'{where}: `{fname}` spatial size {tuple(fine.shape[-2:])} must '
            f'equal the fine grid of `{aname}` {tuple(assign.shape[-2:])}')


def _check_coarse_pair(coarse: Tensor, assign: Tensor, cname: str,
                       aname: str, where: str) -> None:
    _check_same_batch_device(coarse, assign, f'`{cname}` and `{aname}`',
                             where)
    expected = (assign.shape[2] // 2, assign.shape[3] // 2)
    if tuple(coarse.shape[-2:]) != expected:
        raise ValueError(
            f'{where}: `{cname}` spatial size {tuple(coarse.shape[-2:])} does '
            f'not pair with the fine grid {tuple(assign.shape[-2:])} of '
            f'`{aname}` (expected {expected})')


def _check_hierarchy(assignments, where: str) -> List[Tensor]:
    if isinstance(assignments, Tensor) or not isinstance(
            assignments, (list, tuple)):
        raise ValueError(f'{where}: `assignments` must be a list of (B, 9, '
                         f'H, W) tensors ordered finest to coarsest, got '
                         f'{type(assignments).__name__}')
    if len(assignments) == 0:
        raise ValueError(f'{where}: `assignments` is empty; give at least '
                         f'one level')
    assignments = list(assignments)
    for lvl, assign in enumerate(assignments):
        _check_assignment(assign, f'assignments[{lvl}]', where)
        if lvl == 0:
            continue
        prev = assignments[lvl - 1]
        _check_same_batch_device(prev, assign, f'`assignments[{lvl - 1}]` '
                                 f'and `assignments[{lvl}]`', where)
        expected = (prev.shape[2] // 2, prev.shape[3] // 2)
        if tuple(assign.shape[-2:]) != expected:
            raise ValueError(
                f'{where}: `assignments[{lvl}]` has grid '
                f'{tuple(assign.shape[-2:])} but must live on the coarse grid '
                f'{expected} of `assignments[{lvl - 1}]` (levels are ordered '
                f'finest to coarsest, each half the size of the previous)')
    return assignments


def _dtypes(*tensors: Tensor) -> Tuple[torch.dtype, torch.dtype]:
    """(result dtype, compute dtype): torch promotion, computed in >= fp32."""
    out_dtype = tensors[0].dtype
    for t in tensors[1:]:
        out_dtype = torch.promote_types(out_dtype, t.dtype)
    return out_dtype, torch.promote_types(out_dtype, torch.float32)


def _autocast_off(device: torch.device):
    """Context that disables autocast on ``device`` (no-op if unsupported)."""
    try:
        if torch.is_autocast_enabled(device.type):
            return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, TypeError, ValueError):
        pass
    return contextlib.nullcontext()


_LOCAL = threading.local()


@contextlib.contextmanager
def _cpu_scope(device: torch.device):
    """On CPU, hand this thread's intra-op thread budget to the block pool.

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


def _in_cpu_scope(fn: Callable) -> Callable:
    """Run an autograd ``forward``/``backward`` inside :func:`_cpu_scope`."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        device = next(a.device for a in args if isinstance(a, Tensor))
        with _cpu_scope(device):
            return fn(ctx, *args)

    return wrapper


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
              for b0 in range(0, batch, images)
              for r0 in range(0, coarse_h, rows)]
    return images, rows, blocks


def _halo(r0: int, r1: int, coarse_h: int) -> Tuple[int, int, int, int]:
    """Coarse rows ``lo:hi`` of block rows ``r0:r1`` plus a one-row halo,
    and where they sit (``i0:i1``) in a halo buffer whose row 0 is ``r0-1``."""
    lo, hi = max(r0 - 1, 0), min(r1 + 1, coarse_h)
    i0 = lo - (r0 - 1)
    return lo, hi, i0, i0 + hi - lo


def _load_wide(buf: Tensor, coarse: Tensor, b0: int, b1: int, r0: int,
               r1: int) -> None:
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
    return wide[:, :, 1 + dy:1 + dy + rows,
                2 + 2 * dx:2 + 2 * dx + width].unsqueeze(3)


def _run_blocks(work: Callable[[List[Tuple], tuple], None],
                make_buffers: Callable[[], tuple], blocks: List[Tuple],
                device: torch.device) -> None:
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
            _POOL = ThreadPoolExecutor(
                workers, thread_name_prefix='spixreg_ops')
            _POOL_SIZE = workers
        return _POOL


def _forget_pool_after_fork() -> None:
    # The pool's threads do not exist in a forked child (e.g. a DataLoader
    # worker); it builds its own pool on first use.
    global _POOL, _POOL_SIZE, _POOL_LOCK
    _POOL, _POOL_SIZE, _POOL_LOCK = None, 0, threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _upsample_kernel(coarse: Tensor,
                     assign: Tensor,
                     out: Optional[Tensor] = None) -> Tensor:
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


def _downsample_kernel(fine: Tensor,
                       assign: Tensor,
                       out: Optional[Tensor] = None) -> Tensor:
    """coarse[s] = sum over (y, x, j) with seed_j(y, x) = s of A[j,y,x] f[y,x].

    The adjoint of :func:`_upsample_kernel` in its first argument.

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


def _correlation_kernel(fine: Tensor,
                        coarse: Tensor,
                        bias: Optional[Tensor] = None,
                        accumulate: Optional[Tensor] = None) -> Tensor:
    """out[j, y, x] = <fine[:, y, x], coarse[:, seed_j(y, x)]> - bias[seed_j].

    The derivative of :func:`_upsample_kernel` w.r.t. the assignment.

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
        return (fine.new_zeros(images, C, rows + 2, W + 4),
                fine.new_empty(images, C, rows, 2, W),
                None if accumulate is None else fine.new_empty(
                    images, 1, rows, 2, W),
                None if bias is None else fine.new_zeros(
                    images, 1, rows + 2, W + 4))

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


def _seed_mass(assign: Tensor) -> Tensor:
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
            cell = assign[b0:b1].unflatten(3, (w, 2)).unflatten(
                2, (h, 2)).sum((3, 5))
            for j, (dy, dx) in enumerate(SEED_OFFSETS):
                sy, ty = _shift_slices(dy, h)
                sx, tx = _shift_slices(dx, w)
                out[b0:b1, :, ty, tx] += cell[:, j:j + 1, sy, sx]

    _run_blocks(work, tuple, [(b, b + 1, 0, h) for b in range(B)],
                assign.device)
    return out


def _shift_slices(d: int, n: int) -> Tuple[slice, slice]:
    """Cells ``src`` whose seed at offset ``d`` is inside, and those seeds."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n + min(0, d))


# ---------------------------------------------------------------------------
# Autograd functions
# ---------------------------------------------------------------------------
class _SuperpixelUpsampleFn(torch.autograd.Function):
    """Eq. 2 with a hand-written backward that saves only the inputs."""

    @staticmethod
    @_in_cpu_scope
    def forward(ctx, coarse: Tensor, assign: Tensor) -> Tensor:
        ctx.save_for_backward(coarse, assign)
        return _upsample_kernel(coarse, assign)

    @staticmethod
    @once_differentiable
    @_in_cpu_scope
    def backward(ctx, grad_out: Tensor):
        coarse, assign = ctx.saved_tensors
        grad_coarse = grad_assign = None
        if ctx.needs_input_grad[0]:
            grad_coarse = _downsample_kernel(grad_out, assign)
        if ctx.needs_input_grad[1]:
            grad_assign = _correlation_kernel(grad_out, coarse)
        return grad_coarse, grad_assign


class _SuperpixelDownsampleFn(torch.autograd.Function):
    """Weighted superpixel mean; saves the inputs, the (coarse) output and
    the (B, 1, h, w) normaliser."""

    @staticmethod
    @_in_cpu_scope
    def forward(ctx, fine: Tensor, assign: Tensor, eps: float) -> Tensor:
        denom = _seed_mass(assign).add_(eps)
        out = _downsample_kernel(fine, assign).div_(denom)
        ctx.save_for_backward(fine, assign, out, denom)
        return out

    @staticmethod
    @once_differentiable
    @_in_cpu_scope
    def backward(ctx, grad_out: Tensor):
        fine, assign, out, denom = ctx.saved_tensors
        grad_fine = grad_assign = None
        # out = num / denom  =>  d out[s] / d num[s] = 1 / denom[s] and
        # d out[s] / d A[j, y, x] = (fine[y, x] - out[s]) / denom[s].
        scaled = grad_out / denom
        if ctx.needs_input_grad[0]:
            grad_fine = _upsample_kernel(scaled, assign)
        if ctx.needs_input_grad[1]:
            bias = _channel_dot(scaled, out)
            grad_assign = _correlation_kernel(fine, scaled, bias)
        return grad_fine, grad_assign, None


class _NeighbourCorrelationFn(torch.autograd.Function):
    """Dot products between each fine pixel and its 9 seeds."""

    @staticmethod
    @_in_cpu_scope
    def forward(ctx, fine: Tensor, coarse: Tensor) -> Tensor:
        ctx.save_for_backward(fine, coarse)
        return _correlation_kernel(fine, coarse)

    @staticmethod
    @once_differentiable
    @_in_cpu_scope
    def backward(ctx, grad_out: Tensor):
        fine, coarse = ctx.saved_tensors
        grad_fine = grad_coarse = None
        if ctx.needs_input_grad[0]:
            grad_fine = _upsample_kernel(coarse, grad_out)
        if ctx.needs_input_grad[1]:
            grad_coarse = _downsample_kernel(fine, grad_out)
        return grad_fine, grad_coarse


def _weighted_means(x: Tensor, assignments: Sequence[Tensor],
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
        denoms.append(_seed_mass(assign).add_(eps))
        feat = _downsample_kernel(feat, assign).div_(denoms[-1])
        coarse.append(feat)
    return coarse, denoms


class _SuperpixelReconstructFn(torch.autograd.Function):
    """q(x, A) of eq. 3 as one node, for memory: saves only its inputs,
    recomputes the (coarse, hence cheap) intermediates in backward, adds both
    gradient contributions of each assignment into one buffer and releases
    every intermediate as soon as it has been used."""

    @staticmethod
    @_in_cpu_scope
    def forward(ctx, eps: float, x: Tensor, *assignments: Tensor) -> Tensor:
        ctx.eps = eps
        feat = _weighted_means(x, assignments, eps)[0][-1]
        for assign in reversed(assignments):
            feat = _upsample_kernel(feat, assign)
        ctx.save_for_backward(x, *assignments)
        return feat

    @staticmethod
    @once_differentiable
    @_in_cpu_scope
    def backward(ctx, grad_out: Tensor):
        x, *assignments = ctx.saved_tensors
        # Recompute the weighted means c_l = D_l(c_{l-1}) and their
        # normalisers (a quarter of the fine size and less).
        coarse, denoms = _weighted_means(x, assignments, ctx.eps)
        levels = len(assignments)
        need_x = ctx.needs_input_grad[1]
        need_a = ctx.needs_input_grad[2:]
        # Upsampled intermediates: ups[l] is the input of the upsampling by
        # assignments[l], ups[-1] = c_L. Below the coarsest level, the same
        # buffer then receives the gradient w.r.t. ups[l] and later the one
        # w.r.t. coarse[l]: one allocation per level instead of three.
        ups = [None] * levels
        ups[-1] = coarse[-1]
        for lvl in range(levels - 1, 0, -1):
            ups[lvl - 1] = _upsample_kernel(ups[lvl], assignments[lvl])
        grad_a = [None] * levels
        # Through the upsampling chain U_1(...U_L(c_L)), finest first.
        grad = grad_out
        for lvl, assign in enumerate(assignments):
            if need_a[lvl]:
                grad_a[lvl] = _correlation_kernel(grad, ups[lvl])
            grad = _downsample_kernel(
                grad, assign, out=ups[lvl] if lvl < levels - 1 else None)
        # Through the downsampling chain D_L(...D_1(x)), coarsest first.
        for lvl in range(levels - 1, -1, -1):
            assign = assignments[lvl]
            scaled = grad.div_(denoms[lvl])  # grad is ours: reuse in place
            del grad
            if need_a[lvl]:
                bias = _channel_dot(scaled, coarse[lvl])
                fine = x if lvl == 0 else coarse[lvl - 1]
                if grad_a[lvl] is None:
                    grad_a[lvl] = _correlation_kernel(fine, scaled, bias)
                else:
                    _correlation_kernel(fine, scaled, bias, grad_a[lvl])
                del bias, fine
            coarse[lvl] = None
            if lvl == 0 and not need_x:
                grad = None
                break
            grad = _upsample_kernel(
                scaled, assign, out=ups[lvl - 1] if lvl > 0 else None)
            del scaled
        return (None, grad, *grad_a)


def _channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a[:, c] * b[:, c] of (B, C, h, w) tensors, image by image."""
    out = a.new_empty(a.shape[0], 1, *a.shape[2:])

    def work(todo: List[Tuple], buffers: tuple) -> None:
        for b0, b1, _, _ in todo:
            torch.sum(a[b0:b1] * b[b0:b1], dim=1, keepdim=True,
                      out=out[b0:b1])

    _run_blocks(work, tuple, [(i, i + 1, 0, 0) for i in range(a.shape[0])],
                a.device)
    return out


# ---------------------------------------------------------------------------
# Public operators
# ---------------------------------------------------------------------------
def superpixel_upsample(coarse: Tensor, assign: Tensor) -> Tensor:
    """Superpixel upsampling, eq. 2 of Suzuki (2021), one level.

    ``fine[:, y, x] = sum_j assign[j, y, x] * coarse[:, seed_j(y, x)]``.

    Args:
        coarse (Tensor): Coarse features, (B, C, H/2, W/2).
        assign (Tensor): Assignment, (B, 9, H, W) (see module docstring).

    Returns:
        Tensor: Fine features, (B, C, H, W), in the promoted dtype of the
        inputs (computed in at least float32).
    """
    where = 'superpixel_upsample'
    _check_tensor(coarse, 'coarse', where)
    _check_assignment(assign, 'assign', where)
    _check_coarse_pair(coarse, assign, 'coarse', 'assign', where)
    out_dtype, dtype = _dtypes(coarse, assign)
    with _autocast_off(coarse.device):
        out = _SuperpixelUpsampleFn.apply(coarse.to(dtype), assign.to(dtype))
    return out.to(out_dtype)


def superpixel_downsample(fine: Tensor,
                          assign: Tensor,
                          eps: float = 1e-8) -> Tensor:
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

    Returns:
        Tensor: Coarse features, (B, C, H/2, W/2), in the promoted dtype of
        the inputs.
    """
    where = 'superpixel_downsample'
    _check_tensor(fine, 'fine', where)
    _check_assignment(assign, 'assign', where)
    _check_fine_pair(fine, assign, 'fine', 'assign', where)
    _check_eps(eps, where)
    out_dtype, dtype = _dtypes(fine, assign)
    with _autocast_off(fine.device):
        out = _SuperpixelDownsampleFn.apply(
            fine.to(dtype), assign.to(dtype), float(eps))
    return out.to(out_dtype)


def superpixel_reconstruct(x: Tensor,
                           assignments: Sequence[Tensor],
                           eps: float = 1e-8) -> Tensor:
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

    Returns:
        Tensor: (B, C, H, W), in the promoted dtype of the inputs.
    """
    where = 'superpixel_reconstruct'
    _check_tensor(x, 'x', where)
    assignments = _check_hierarchy(assignments, where)
    _check_fine_pair(x, assignments[0], 'x', 'assignments[0]', where)
    _check_eps(eps, where)
    out_dtype, dtype = _dtypes(x, *assignments)
    with _autocast_off(x.device):
        out = _SuperpixelReconstructFn.apply(
            float(eps), x.to(dtype), *[a.to(dtype) for a in assignments])
    return out.to(out_dtype)


def neighbour_correlation(fine: Tensor, coarse: Tensor) -> Tensor:
    """Dot product of every fine pixel with each of its 9 seeds.

    ``out[:, j, y, x] = <fine[:, :, y, x], coarse[:, :, seed_j(y, x)]>``,
    exactly 0 for out-of-map seeds. With unit-norm features this is the
    cosine similarity of eq. 1.

    Args:
        fine (Tensor): (B, C, H, W).
        coarse (Tensor): (B, C, H/2, W/2).

    Returns:
        Tensor: (B, 9, H, W), in the promoted dtype of the inputs.
    """
    where = 'neighbour_correlation'
    _check_tensor(fine, 'fine', where)
    _check_tensor(coarse, 'coarse', where)
    _check_even(fine.shape[2], fine.shape[3], f'{where} (`fine`)')
    _check_coarse_pair(coarse, fine, 'coarse', 'fine', where)
    if fine.shape[1] != coarse.shape[1]:
        raise ValueError(f'{where}: `fine` and `coarse` must have the same '
                         f'number of channels, got {fine.shape[1]} and '
                         f'{coarse.shape[1]}')
    out_dtype, dtype = _dtypes(fine, coarse)
    with _autocast_off(fine.device):
        out = _NeighbourCorrelationFn.apply(fine.to(dtype), coarse.to(dtype))
    return out.to(out_dtype)


def hard_superpixels(assignments: Sequence[Tensor]) -> Tensor:
    """Hard superpixels: follow each level's argmax seed down the hierarchy.

    Every fine pixel picks its most likely seed on the next grid; that seed
    (a pixel of the next level) picks its own most likely seed, and so on
    until the coarsest grid. Out-of-map seeds are never picked.

    Args:
        assignments (Sequence[Tensor]): Assignments ordered finest to
            coarsest, e.g. ``[A4 (B, 9, H, W), A8 (B, 9, H/2, W/2)]``.

    Returns:
        Tensor: LongTensor (B, H, W) on the finest grid; per pixel the flat
        (row-major) index ``sy * w_L + sx`` of its seed on the coarsest grid
        ``(h_L, w_L) = (H / 2**L, W / 2**L)``.
    """
    where = 'hard_superpixels'
    assignments = _check_hierarchy(assignments, where)
    B, _, H, W = assignments[0].shape
    device = assignments[0].device
    with torch.no_grad():
        ys = torch.arange(H, device=device).view(1, H, 1).expand(B, H, W)
        xs = torch.arange(W, device=device).view(1, 1, W).expand(B, H, W)
        for assign in assignments:
            height, width = assign.shape[-2:]
            logits = assign.detach().masked_fill(
                ~valid_seed_mask(height, width, device), float('-inf'))
            best = logits.argmax(dim=1).flatten(1)  # (B, height * width)
            j = best.gather(1, (ys * width + xs).reshape(B, -1)).view(B, H, W)
            ys, xs = seed_coordinates(j, ys, xs)
        coarse_w = assignments[-1].shape[3] // 2
        return (ys * coarse_w + xs).long()


def _check_eps(eps, where: str) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) \
            or not eps > 0:
        raise ValueError(f'{where}: `eps` must be a positive number (it keeps '
                         f'empty superpixels at 0 instead of 0/0), got '
                         f'{eps!r}')


__all__ = [
    'NUM_SEEDS', 'SEED_OFFSETS', 'seed_coordinates', 'valid_seed_mask',
    'superpixel_upsample', 'superpixel_downsample', 'superpixel_reconstruct',
    'neighbour_correlation', 'hard_superpixels'
]
