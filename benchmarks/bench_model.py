# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Model cost: parameters and inference time of FCN-16 vs HCFCN-16, training-step time of the
regularized vs unregularized HCFCN-16 on the same batch.

    python benchmarks/bench_model.py --threads 1           # CPU, 512x1024 inference
    python benchmarks/bench_model.py --device cuda --train-size 512 512 --batch 8

Two lines are always printed, on every device: ``inference ratio HCFCN-16 / FCN-16 ...`` and
``training-step ratio regularized / unregularized ...`` (goals: <= 1.10 and <= 1.05).
The superpixel ops run with ``backend='auto'``: the torch kernels, or on CUDA the Triton kernels
where they are opted in; ``--backend triton`` (or ``torch``) sets that for the run
(``MMSEG_SPIXREG_TRITON``), and the first line names the kernel set that ran.

Models are built from the Cityscapes configs (19 classes) with random initialisation. On a
CPU shared with other jobs, ``--threads 1`` gives stable numbers: with 2 threads on 2 busy cores,
every small op waits for the second thread (element-wise ops measured 100x slower).
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_spixreg.models  # noqa: F401
from mmseg_spixreg.ops.superpixel import TRITON_ENV, select_kernels

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def build(name, device):
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = None
    cfg.model.data_preprocessor.size_divisor = 16
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


def timed_pair(fn_a, fn_b, repeat, device):
    """Alternate ``fn_a`` / ``fn_b`` ``repeat`` times (after one warm-up each), so that load
    from other processes hits both alike.

    Returns, for each, ``(min wall s, median wall s, min process CPU s)``. On a shared CPU the
    process CPU time (all threads of this process) is the contention-robust number; wall time
    is what a user waits.
    """

    def once(fn):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        return time.perf_counter() - w0, time.process_time() - c0

    fn_a(), fn_b()
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(once(fn_a))
        tb.append(once(fn_b))

    def stats(ts):
        walls = [t[0] for t in ts]
        return min(walls), statistics.median(walls), min(t[1] for t in ts)

    return stats(ta), stats(tb)


def fmt(t):
    return f'wall {t[0] * 1e3:.0f} ms (median {t[1] * 1e3:.0f}), CPU {t[2] * 1e3:.0f} ms'


def ratios(a, b):
    return f'ratio wall {b[0] / a[0]:.2f}, CPU {b[2] / a[2]:.2f}'


def headline(what, size, a, b, target, device):
    """The one-line ratio ``b / a`` (printed on every device): the wall-clock ratio on CUDA (the
    GPU's work is not process CPU time), the process-CPU-time ratio on CPU (robust to other load
    on a shared machine)."""
    cuda = device.startswith('cuda')
    ratio = b[0] / a[0] if cuda else b[2] / a[2]
    name = torch.cuda.get_device_name() if cuda else 'CPU'
    return (f'{what} at {size}: {ratio:.3f} ({"wall" if cuda else "process CPU"} time, min of '
            f'repeats, {name}; goal <= {target:.2f}: {"met" if ratio <= target else "MISSED"})')


def count(model):
    return sum(p.numel() for p in model.parameters())


def inference_parts(model, x, metas):
    """The parts of HCFCN-16's ``encode_decode`` as callables on precomputed inputs (no grad)."""
    head = model.decode_head
    with torch.no_grad():
        feats = model.backbone.forward_pairs(x)  # the stage outputs and the DCN feature pairs
        assigned = model.neck(feats)
        coarse = head.coarse_logits(assigned)
        fine = head.upsample_logits(coarse, assigned.assignments, assigned.fine_sizes)
        logits = head.predict_by_feat(fine, metas)
    return {
        'backbone':
        lambda: model.backbone.forward_pairs(x),
        'neck (A4, A8)':
        lambda: model.neck(feats),
        'classifier (stride 16)':
        lambda: head.coarse_logits(assigned),
        'superpixel upsampling 16->4':
        lambda: head.upsample_logits(coarse, assigned.assignments, assigned.fine_sizes),
        'resize 4->1 (predict_by_feat)':
        lambda: head.predict_by_feat(fine, metas),
        'predict_superpixels':
        lambda: head.predict_superpixels(assigned, logits.shape[-2:]),
    }


def count_launches(fn):
    """Number of CUDA kernels ``fn`` launches (torch profiler; one warm call first)."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def captured(mode, fn, x):
    """``fn(x)`` as a CUDA graph replay (static input ``x``) or a ``torch.compile``d call."""
    if mode == 'compile':
        compiled = torch.compile(fn)
        with torch.no_grad():
            compiled(x)  # compiles

        def run():
            with torch.no_grad():
                return compiled(x)

        return run
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(2):  # warm-up outside the graph (lazy init, Triton compiles)
            fn(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        fn(x)
    return graph.replay


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    for flag, default, what in (('--size', (512, 1024), 'inference input size'),
                                ('--train-size', (256, 256), 'training crop size')):
        parser.add_argument(
            flag,
            type=int,
            nargs=2,
            default=default,
            metavar=('H', 'W'),
            help=f'{what} (default: {default[0]} {default[1]})')
    parser.add_argument('--batch', type=int, default=2, help='training batch size')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    parser.add_argument(
        '--cuda-graph',
        action='store_true',
        help='also time both models captured as CUDA graphs (CUDA only)')
    parser.add_argument(
        '--compile', action='store_true', help='also time both models under torch.compile')
    parser.add_argument(
        '--backend',
        choices=['auto', 'torch', 'triton'],
        default='auto',
        help="kernels of the superpixel ops on CUDA: 'triton' / 'torch' set MMSEG_SPIXREG_TRITON "
        "to 1 / 0 for this run; 'auto' keeps the default (default: auto)")
    args = parser.parse_args()
    if args.backend != 'auto':
        os.environ[TRITON_ENV] = '1' if args.backend == 'triton' else '0'

    if args.cuda_graph and not args.device.startswith('cuda'):
        parser.error('--cuda-graph needs --device cuda')
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    kernels = select_kernels('auto', torch.device(dev), 'bench_model').__name__.rsplit('.', 1)[-1]
    print(f'device {dev}, torch threads {torch.get_num_threads()}, superpixel ops: {kernels}')

    fcn = build('fcn16_r34_cityscapes_fine.py', dev).eval()
    hcfcn = build('hcfcn16_r34_cityscapes_fine.py', dev).eval()
    n_fcn, n_hc = count(fcn), count(hcfcn)
    print(f'params  FCN-16 {n_fcn:,}  HCFCN-16 {n_hc:,}  (+{n_hc - n_fcn:,} in the assignment '
          f'projections, ratio {n_hc / n_fcn:.4f})')

    h, w = args.size
    x = torch.randn(1, 3, h, w, device=dev)
    metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]
    with torch.no_grad():
        # pyflakes flags fcn (F821) because of the `del fcn` below; the lambda runs before it
        t_fcn, t_hc = timed_pair(
            lambda: fcn.encode_decode(x, metas),  # noqa: F821
            lambda: hcfcn.encode_decode(x, metas),
            args.repeat,
            dev)
    print(f'inference {h}x{w} (batch 1, full-resolution logits; min of {args.repeat}):\n  '
          f'FCN-16 {fmt(t_fcn)} | HCFCN-16 {fmt(t_hc)} | {ratios(t_fcn, t_hc)}')
    print(headline('inference ratio HCFCN-16 / FCN-16', f'1x3x{h}x{w}', t_fcn, t_hc, 1.10, dev))
    # where HCFCN-16's extra time goes (same run): every part of encode_decode
    parts = inference_parts(hcfcn, x, metas)
    with torch.no_grad():
        for name, fn in parts.items():
            _, t = timed_pair(lambda: None, fn, args.repeat, dev)
            launches = count_launches(fn) if dev.startswith('cuda') else None
            print(f'  HCFCN-16 {name}: {fmt(t)}' +
                  ('' if launches is None else f', {launches} kernel launches'))
        if dev.startswith('cuda'):
            print(f'  kernel launches of encode_decode: FCN-16 '
                  f'{count_launches(lambda: fcn.encode_decode(x, metas))}, HCFCN-16 '  # noqa: F821
                  f'{count_launches(lambda: hcfcn.encode_decode(x, metas))}')
    for mode in [m for m in ('cuda-graph', 'compile') if getattr(args, m.replace('-', '_'))]:
        try:
            run_fcn = captured(mode, lambda inp: fcn.encode_decode(inp, metas), x)  # noqa: F821
            run_hc = captured(mode, lambda inp: hcfcn.encode_decode(inp, metas), x)
        except Exception as error:  # report and go on: the eager numbers stand
            print(f'{mode}: capture failed: {type(error).__name__}: {error}')
            continue
        t_fcn, t_hc = timed_pair(run_fcn, run_hc, args.repeat, dev)
        print(f'inference {h}x{w} as {mode}: FCN-16 {fmt(t_fcn)} | HCFCN-16 {fmt(t_hc)}')
        print(
            headline(f'inference ratio HCFCN-16 / FCN-16 ({mode})', f'1x3x{h}x{w}', t_fcn, t_hc,
                     1.10, dev))
    del fcn

    th, tw = args.train_size
    g = torch.Generator().manual_seed(0)
    samples, inputs = [], []
    for _ in range(args.batch):
        inputs.append(torch.randint(0, 256, (3, th, tw), generator=g, dtype=torch.uint8))
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(th, tw), ori_shape=(th, tw), pad_shape=(th, tw)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, th, tw), generator=g))
        samples.append(s)
    batch = dict(inputs=inputs, data_samples=samples)
    reg = build('hcfcn_r34_cityscapes_fine.py', dev).train()
    reg.load_state_dict(hcfcn.state_dict())
    hcfcn.train()

    def step(model):
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        model.zero_grad()
        loss.backward()

    t_unreg, t_reg = timed_pair(lambda: step(hcfcn), lambda: step(reg), args.repeat, dev)
    print(f'training step {args.batch}x3x{th}x{tw} (forward + backward; min of {args.repeat}):\n  '
          f'unregularized {fmt(t_unreg)} | regularized (L_SLIC) {fmt(t_reg)} | '
          f'{ratios(t_unreg, t_reg)}')
    print(
        headline('training-step ratio regularized / unregularized', f'{args.batch}x3x{th}x{tw}',
                 t_unreg, t_reg, 1.05, dev))

    # the regulariser's own cost on that batch: L_SLIC forward + backward to the assignments
    data = reg.data_preprocessor(copy.deepcopy(batch), True)
    with torch.no_grad():
        assigned = reg.extract_feat(data['inputs'])
    leaves = [a.detach().requires_grad_() for a in assigned.assignments]
    images, valid = reg.decode_head._stack_slic_images(data['data_samples'])

    def slic():
        reg.decode_head.loss_slic(images, leaves, assigned.fine_sizes[0], valid).backward()

    _, t_slic = timed_pair(lambda: None, slic, args.repeat, dev)
    k, unit = (0, 'wall') if dev.startswith('cuda') else (2, 'CPU')
    print(f'  L_SLIC alone (Lab conversion, q(x, [A4, A8]), norms; forward + backward): '
          f'{fmt(t_slic)} = {t_slic[k] / t_unreg[k] * 100:.1f}% of the unregularized step '
          f'({unit})')


if __name__ == '__main__':
    main()
