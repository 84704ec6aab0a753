# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Benchmark q(x, [A4, A8]) (eq. 3) forward + backward against an unfold-based
reference implementation.

Usage::

    python benchmarks/bench_ops.py                      # CPU (and CUDA if any)
    python benchmarks/bench_ops.py --device cpu --repeats 5
    python benchmarks/bench_ops.py --batch 2 --size 128  # quick run
    python benchmarks/bench_ops.py --device cuda        # + the GPU table's sizes

With ``--device cuda`` (or ``auto`` on a machine with a GPU) the CUDA run also
covers the five sizes of the GPU table (docs/design.md) (``CUDA_SIZES``: 4x16x256x256,
8x32x256x256, 8x5x512x512, 8x19x512x1024, 8x5x128x128) and ends with a summary
table; ``--backend`` picks the kernels of ``ours`` (default ``auto``: the
torch kernels, or for CUDA tensors the Triton kernels where they are opted in
with ``MMSEG_SPIXREG_TRITON=1``; ``--backend triton`` measures those
explicitly). Each table's header names the kernel set that ran.

Workload: ``B=8, C=32``, fine grid 256x256, two levels ``A4`` (B, 9,
256, 256) and ``A8`` (B, 9, 128, 128), random valid (masked softmax)
assignments, gradients w.r.t. ``x``, ``A4`` and ``A8``. One iteration is
``q = q(x, [A4, A8]); q.backward(grad)`` with a fixed pre-allocated ``grad``.

Methods:

* ``ours``: :func:`mmseg_spixreg.ops.superpixel_reconstruct` (``--backend``).
* ``unfold``: the straightforward implementation written below, the way the
  literature's reference code does it: ``F.unfold`` the 3x3 neighbourhood of
  the coarse map, repeat it to the fine grid, multiply with the assignment and
  sum (upsampling); multiply features and assignment for all 9 seeds, pool the
  2x2 cells and ``F.fold`` them back onto the seeds (downsampling). Plain
  autograd does the backward pass.

Both methods are checked against each other on a small input first.

Time: median wall-clock time of ``--repeats`` iterations after one warm-up,
the two methods alternating within one process, so that load changes on the
machine hit both alike.

Peak memory, CPU: PyTorch has no allocation counter for CPU tensors (and
``tracemalloc`` does not see them), so each method runs once in a fresh
subprocess and the operating system's view is used: after a tiny warm-up run
(one-off lazy initialisation) and after allocating the inputs (x, A4, A8 and
the output gradient, which both methods share), the process resets its
resident-set high-water mark (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0)
and records its current RSS; after one forward+backward it reads the
high-water mark ``VmHWM``. The reported number is ``VmHWM - RSS before``: the
peak of the extra resident memory of the iteration, i.e. everything it
allocates (output, saved tensors, temporaries, and the gradients of x, A4 and
A8) as the OS sees it, including what the C allocator keeps cached. Where
``clear_refs`` is unavailable the script falls back to ``ru_maxrss`` (the
lifetime peak, which the tiny warm-up keeps below the measured run) and says
so. glibc's default dynamic mmap threshold lets freed blocks of up to 32 MiB
stay resident in its heap, which RSS counts; ``--strict-malloc`` turns that
off (fixed threshold) to see the live tensor bytes instead. The default run
keeps the allocator as users get it.

Peak memory, CUDA: ``torch.cuda.max_memory_allocated()`` after
``reset_peak_memory_stats()``, minus the memory allocated before the
iteration (same definition: extra memory of one iteration).

Bytes model (the memory roofline): :func:`min_bytes` is the least traffic a
forward + backward of q can have (read x and every A, write q; read the
upstream gradient, x and every A, write the gradients of x and every A; in
fp32 ``4 (5C + 33.75) B H W`` for two levels); :func:`chain_bytes` is what
the Triton chain moves if every launch reads its inputs and writes its
outputs once (the seed gathers and halos served by the caches). The device's
copy bandwidth is measured in the same run (:func:`copy_bandwidth`, a large
device-to-device copy), and each method's line gives the fraction of it that
``min_bytes / time`` reaches (both methods against the same minimum), and for
``ours`` also ``chain_bytes / time``.
"""
import argparse
import json
import os
import os.path as osp
import re
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from mmseg_spixreg.ops import superpixel_reconstruct, valid_seed_mask
from mmseg_spixreg.ops.superpixel import select_kernels

METHODS = ('unfold', 'ours')
# (B, C, H, W) of the GPU table (docs/design.md), measured in addition on CUDA.
CUDA_SIZES = ((4, 16, 256, 256), (8, 32, 256, 256), (8, 5, 512, 512), (8, 19, 512, 1024),
              (8, 5, 128, 128))
BACKEND = 'auto'  # of ``ours``; set from --backend


# ---------------------------------------------------------------------------
# The unfold-based reference implementation
# ---------------------------------------------------------------------------
def unfold_upsample(coarse, assign):
    """Eq. 2 via a materialised 3x3 unfold repeated to the fine grid."""
    B, C, h, w = coarse.shape
    neigh = F.unfold(coarse, kernel_size=3, padding=1).view(B, C * 9, h, w)
    neigh = F.interpolate(neigh, scale_factor=2, mode='nearest')
    neigh = neigh.view(B, C, 9, 2 * h, 2 * w)
    return (neigh * assign.unsqueeze(1)).sum(2)


def unfold_downsample(fine, assign, eps=1e-8):
    """Weighted superpixel mean via the 9-seed product and ``F.fold``."""
    B, C, H, W = fine.shape
    h, w = H // 2, W // 2
    prod = fine.unsqueeze(2) * assign.unsqueeze(1)  # (B, C, 9, H, W)
    cells = prod.view(B, C * 9, h, 2, w, 2).sum((3, 5)).view(B, C * 9, h * w)
    num = F.fold(cells, (h, w), kernel_size=3, padding=1)
    mass = assign.view(B, 9, h, 2, w, 2).sum((3, 5)).view(B, 9, h * w)
    den = F.fold(mass, (h, w), kernel_size=3, padding=1)
    return num / (den + eps)


def unfold_reconstruct(x, assignments, eps=1e-8):
    feat = x
    for assign in assignments:
        feat = unfold_downsample(feat, assign, eps)
    for assign in reversed(assignments):
        feat = unfold_upsample(feat, assign)
    return feat


def ours_reconstruct(x, assignments):
    return superpixel_reconstruct(x, assignments, backend=BACKEND)


FUNCS = {'unfold': unfold_reconstruct, 'ours': ours_reconstruct}


# ---------------------------------------------------------------------------
# Bytes model
# ---------------------------------------------------------------------------
def _level_fractions(levels):
    """Pixels of each assignment level relative to the finest: 1, 1/4, ..."""
    return [4.0**-lvl for lvl in range(levels)]


def min_bytes(batch, channels, height, width, levels=2, itemsize=4):
    """The least bytes a forward + backward of q(x, [A_1..A_L]) can move.

    Forward: read x and every assignment, write q; backward: read the upstream
    gradient, x and every assignment, write the gradients of x and of every
    assignment. So ``itemsize * (5 C + 3 * 9 * (1 + 1/4 + ...)) * B * H * W``:
    ``4 (5C + 33.75) B H W`` bytes for [A4, A8] in fp32.

    Args:
        batch, channels, height, width (int): (B, C, H, W) of x.
        levels (int): Number of assignment levels L. Default: 2.
        itemsize (int): Bytes per element. Default: 4 (fp32).

    Returns:
        float: bytes.
    """
    assign = 9 * sum(_level_fractions(levels))
    return itemsize * (5 * channels + 3 * assign) * batch * height * width


def chain_bytes(batch, channels, height, width, itemsize=4):
    """Bytes the Triton chain of q(x, [A4, A8]) moves (7 launches), each
    launch reading its inputs and writing its outputs once (elements per
    fine pixel: C for a fine map, C/4, C/16 for the coarser ones, 9, 9/4 for
    A4, A8, 1/4, 1/16 for the per-seed masses and biases)."""
    C = channels
    launches = [  # (reads, writes) of each launch, in elements per fine pixel
        (C + 9, C / 4 + 1 / 4),  # weighted mean 1: x, A4 -> c1, m1
        (C / 4 + 9 / 4, C / 16 + 1 / 16),  # weighted mean 2: c1, A8 -> c2, m2
        (C / 16 + 9 / 4 + 9, C / 4 + C),  # both upsamplings: c2, A8, A4 -> u1, q
        (C + 9, C / 4),  # G1 = D1(g): g, A4
        (C / 4 + 9 / 4 + 1 / 16 + C / 16, C / 16 + 1 / 16),  # s2, bias2: G1, A8, m2, c2
        (C / 4 + C / 16 + C / 4 + C / 16 + 1 / 16 + 9 / 4 + 1 / 4,
         9 / 4 + C / 4 + 1 / 4),  # gA8, s1, bias1
        (C + C / 4 + C + C / 4 + 1 / 4 + 9, 9 + C),  # gA4, gx
    ]
    return itemsize * sum(r + w for r, w in launches) * batch * height * width


def copy_bandwidth(device, nbytes=1 << 30, repeats=5):
    """Bytes per second of a large copy on ``device`` (read + write counted,
    best of ``repeats``)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    best = float('inf')
    for _ in range(repeats + 1):  # the first one warms up
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    del src, dst
    return 2 * nbytes / best


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def make_inputs(batch, channels, size, device, seed=0):
    """x, [A4, A8], upstream grad; ``size`` is a side or an (H, W) pair."""
    gen = torch.Generator().manual_seed(seed)
    height, width = (size, size) if isinstance(size, int) else size

    def assignment(h, w):
        logits = torch.randn(batch, 9, h, w, generator=gen)
        logits = logits.masked_fill(~valid_seed_mask(h, w), float('-inf'))
        return logits.softmax(1).to(device).requires_grad_()

    x = torch.randn(batch, channels, height, width, generator=gen)
    x = x.to(device).requires_grad_()
    assignments = [assignment(height, width), assignment(height // 2, width // 2)]
    grad = torch.randn(batch, channels, height, width, generator=gen)
    return x, assignments, grad.to(device)


def step(method, x, assignments, grad):
    """One forward + backward; gradients are dropped first."""
    for t in [x] + assignments:
        t.grad = None
    out = FUNCS[method](x, assignments)
    out.backward(grad)
    return out


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def check_agreement(device):
    x, levels, grad = make_inputs(2, 3, 16, device, seed=1)
    results = {}
    for method in METHODS:
        out = step(method, x, levels, grad)
        results[method] = [out.detach()] + [t.grad.clone() for t in [x] + levels]
    for a, b in zip(results['ours'], results['unfold']):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def time_methods(args, device):
    inputs = make_inputs(args.batch, args.channels, _hw(args), device)
    times = {m: [] for m in METHODS}
    for method in METHODS:  # warm-up
        step(method, *inputs)
    for _ in range(args.repeats):
        for method in METHODS:
            sync(device)
            start = time.perf_counter()
            step(method, *inputs)
            sync(device)
            times[method].append(time.perf_counter() - start)
    return {m: statistics.median(v) for m, v in times.items()}, times


def _proc_status():
    with open('/proc/self/status') as f:
        text = f.read()
    return {
        key: int(re.search(rf'^{key}:\s+(\d+) kB', text, re.M).group(1)) * 1024
        for key in ('VmRSS', 'VmHWM')
    }


def measure_cpu_memory_here(method, args):
    """Runs inside the per-method subprocess; prints a JSON line."""
    step(method, *make_inputs(1, 2, 32, torch.device('cpu')))  # lazy init
    inputs = make_inputs(args.batch, args.channels, _hw(args), torch.device('cpu'))
    before = _proc_status()['VmRSS']
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        source = 'VmHWM after clear_refs'
    except OSError:
        source = 'ru_maxrss (clear_refs unavailable)'
    step(method, *inputs)
    if source.startswith('VmHWM'):
        peak = _proc_status()['VmHWM']
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({'peak_extra': peak - before, 'source': source}))


def cpu_memory(args):
    result = {}
    for method in METHODS:
        cmd = [
            sys.executable,
            osp.abspath(__file__), '--measure-memory', method, '--batch',
            str(args.batch), '--channels',
            str(args.channels), '--size',
            str(args.size), '--width',
            str(_hw(args)[1]), '--backend', args.backend
        ]
        if args.threads:
            cmd += ['--threads', str(args.threads)]
        env = dict(os.environ)
        if args.strict_malloc:
            env['MALLOC_MMAP_THRESHOLD_'] = '131072'
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        result[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        if args.strict_malloc:
            result[method]['source'] += ', MALLOC_MMAP_THRESHOLD_=131072'

    return result


def cuda_memory(args, device):
    result = {}
    for method in METHODS:
        inputs = make_inputs(args.batch, args.channels, _hw(args), device)
        step(method, *inputs)  # warm-up, creates the .grad tensors
        for t in [inputs[0]] + inputs[1]:
            t.grad = None
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(method, *inputs)
        torch.cuda.synchronize(device)
        result[method] = {
            'peak_extra': torch.cuda.max_memory_allocated(device) - before,
            'source': 'torch.cuda.max_memory_allocated'
        }
        del inputs
        torch.cuda.empty_cache()
    return result


def kernel_set(backend, device):
    """The kernel set ``backend`` runs on ``device`` ('torch_kernels' or 'triton_kernels')."""
    return select_kernels(backend, device, 'bench_ops').__name__.rsplit('.', 1)[-1]


def report(device, args, times, all_times, memory, bandwidth):
    mib = 2.0**20
    name = (f', {torch.cuda.get_device_name(device)}' if device.type == 'cuda' else '')
    print(f'\n== {device.type.upper()} ({torch.get_num_threads()} CPU threads'
          f'{name}), q(x, [A4, A8]) forward+backward, B={args.batch}, '
          f'C={args.channels}, {"x".join(map(str, _hw(args)))}, '
          f'{args.repeats} repeats, backend of ours: {args.backend} '
          f'({kernel_set(args.backend, device)}) ==')
    for method in METHODS:
        runs = ', '.join(f'{t:.3f}' for t in all_times[method])
        print(f'{method:>7}: median {times[method]:.3f} s  [{runs}]   '
              f'peak extra memory {memory[method]["peak_extra"] / mib:8.1f} '
              f'MiB ({memory[method]["source"]})')
    shape = (args.batch, args.channels, *_hw(args))
    least, ours_bytes = min_bytes(*shape), chain_bytes(*shape)
    fractions = {m: least / times[m] / bandwidth for m in METHODS}
    print(f'bytes: minimum {least / 1e6:.1f} MB, our chain {ours_bytes / 1e6:.1f} MB '
          f'({ours_bytes / least:.2f}x the minimum); copy bandwidth {bandwidth / 1e9:.1f} GB/s '
          f'(measured in this run)')
    print(f'fraction of the copy bandwidth: minimum bytes / time: ours '
          f'{fractions["ours"] * 100:.1f} %, unfold {fractions["unfold"] * 100:.1f} %; '
          f'our chain bytes / time: {ours_bytes / times["ours"] / bandwidth * 100:.1f} %')
    speedup = times['unfold'] / times['ours']
    # (tiny runs can measure 0 bytes: RSS moves in pages)
    mem_ratio = memory['ours']['peak_extra'] / max(memory['unfold']['peak_extra'], 1)
    print(f'time ratio   unfold / ours = {speedup:.2f}x  (target >= 5x: '
          f'{"met" if speedup >= 5 else "MISSED"})')
    print(f'memory ratio ours / unfold = {mem_ratio:.4f} = 1/'
          f'{1 / max(mem_ratio, 1e-9):.1f}  (target <= 1/8: '
          f'{"met" if mem_ratio <= 1 / 8 else "MISSED"})')
    return speedup, mem_ratio, fractions


def _hw(args):
    return args.size, args.width or args.size


def summary(rows):
    print('\n| input (B, C, H, W), fp32 | ours | unfold reference | '
          'time ratio unfold/ours | memory ratio unfold/ours | '
          'copy-bandwidth fraction ours / unfold |')
    print('|---|---|---|---|---|---|')
    mib = 2.0**20
    for shape, times, memory, speedup, mem_ratio, fractions in rows:
        print(f'| {", ".join(map(str, shape[:2]))}, {shape[2]}x{shape[3]} | '
              f'{times["ours"] * 1e3:.1f} ms, '
              f'{memory["ours"]["peak_extra"] / mib:.0f} MiB | '
              f'{times["unfold"] * 1e3:.1f} ms, '
              f'{memory["unfold"]["peak_extra"] / mib:.0f} MiB | '
              f'{speedup:.2f}x | {1 / max(mem_ratio, 1e-9):.1f}x | '
              f'{fractions["ours"] * 100:.1f} % / {fractions["unfold"] * 100:.1f} % |')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--size', type=int, default=256, help='fine grid side (multiple of 4)')
    parser.add_argument(
        '--width', type=int, default=0, help='fine grid width if not --size (multiple of 4)')
    parser.add_argument(
        '--backend', choices=['auto', 'torch', 'triton'], default='auto', help='kernels of `ours`')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument(
        '--device',
        choices=['auto', 'cpu', 'cuda'],
        default='auto',
        help='auto: CPU, then CUDA when available')
    parser.add_argument(
        '--threads', type=int, default=0, help='torch CPU threads (0: PyTorch default)')
    parser.add_argument(
        '--strict-malloc',
        action='store_true',
        help='CPU memory: run the measuring subprocesses with '
        'MALLOC_MMAP_THRESHOLD_=131072, so that glibc maps '
        'and unmaps every large block and RSS follows the '
        'live tensor bytes (no allocator caching)')
    parser.add_argument('--measure-memory', choices=METHODS, help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    global BACKEND
    args = parse_args()
    BACKEND = args.backend
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.measure_memory:
        measure_cpu_memory_here(args.measure_memory, args)
        return
    if args.size % 4 or args.width % 4:
        raise SystemExit('--size and --width must be multiples of 4')
    devices = []
    if args.device in ('auto', 'cpu'):
        devices.append(torch.device('cpu'))
    if args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available()):
        devices.append(torch.device('cuda'))
    for device in devices:
        check_agreement(device)
        bandwidth = copy_bandwidth(device, nbytes=(1 << 30) if device.type == 'cuda' else (1 << 28))
        cases = [args]
        if device.type == 'cuda':  # + the sizes of the GPU table
            own = (args.batch, args.channels, *_hw(args))
            cases += [
                argparse.Namespace(**dict(vars(args), batch=b, channels=c, size=h, width=w))
                for b, c, h, w in CUDA_SIZES if (b, c, h, w) != own
            ]
        rows = []
        for case in cases:
            memory = (cpu_memory(case) if device.type == 'cpu' else cuda_memory(case, device))
            times, all_times = time_methods(case, device)
            rows.append(((case.batch, case.channels, *_hw(case)), times, memory,
                         *report(device, case, times, all_times, memory, bandwidth)))
        if len(rows) > 1:
            summary(rows)


if __name__ == '__main__':
    main()
