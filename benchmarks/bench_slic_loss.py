# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""L_SLIC as eq. 4 (per-pixel norms at full resolution) vs the former stride-4 evaluation.

Two parts, both against the former evaluation ``mean over stride-4 cells of
||avg_pool4(lab) - q(avg_pool4(lab), [A4, A8])||`` (re-implemented here as the reference):

* values on real CamVid crops (480x352, i.e. 360 rows cropped to a multiple of 16) for the
  regular grid (every cell on its own seed) and for random soft assignments;
* time of forward + backward (gradient w.r.t. A4 and A8) at ``--batch`` x 3 x ``--size`` x
  ``--size`` (default 8x3x512x512, the paper's training batch), best of ``--repeat``
  interleaved rounds, all measured in this run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_slic_loss.py
"""
import argparse
import os.path as osp
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def random_assignment(b, h, w, generator):
    from mmseg_spixreg.ops import valid_seed_mask
    logits = torch.randn(b, 9, h, w, generator=generator) * 2
    return logits.masked_fill(~valid_seed_mask(h, w), float('-inf')).softmax(1)


def grid_assignment(b, h, w):
    a = torch.zeros(b, 9, h, w)
    a[:, 4] = 1.0
    return a


def stride4_loss(image, assignments):
    """The former evaluation (m = 0): mean over stride-4 cells of the cell-mean Lab error."""
    from mmseg_spixreg.models.losses import rgb_to_lab
    from mmseg_spixreg.ops import superpixel_reconstruct
    with torch.no_grad():
        lab4 = F.avg_pool2d(rgb_to_lab(image / 255.0), 4)
    q = superpixel_reconstruct(lab4, assignments)
    return ((lab4 - q).pow(2).sum(1) + 1e-6).sqrt().mean()


def timed(fn, repeat):
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--camvid', default=osp.join(ROOT, '..', 'shared', 'data', 'camvid'))
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    from mmseg_spixreg.models.losses import SLICLoss
    new = SLICLoss(loss_weight=1.0, m=0.0)
    g = torch.Generator().manual_seed(0)

    names = ['0016E5_07959.png', '0016E5_08085.png', '0016E5_08157.png']
    print('L_SLIC (lambda = 1, m = 0) on CamVid val crops 352x480:')
    for name in names:
        bgr = cv2.imread(osp.join(args.camvid, 'val', name), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f'  {name}: not found under {args.camvid}, skipped')
            continue
        rgb = torch.from_numpy(np.ascontiguousarray(bgr[:352, :, ::-1])).permute(2, 0, 1)
        image = rgb[None].float()
        for kind, a4, a8 in (('grid  ', grid_assignment(1, 88, 120), grid_assignment(1, 44, 60)),
                             ('random', random_assignment(1, 88, 120,
                                                          g), random_assignment(1, 44, 60, g))):
            old_v = stride4_loss(image, [a4, a8]).item()
            new_v = new(image, [a4, a8], (88, 120)).item()
            print(f'  {name} {kind}: stride-4 (old) {old_v:7.3f}   eq. 4 (new) {new_v:7.3f}   '
                  f'ratio {new_v / old_v:5.2f}')

    b, s = args.batch, args.size
    image = torch.rand(b, 3, s, s, generator=g) * 255
    a4 = random_assignment(b, s // 4, s // 4, g).requires_grad_()
    a8 = random_assignment(b, s // 8, s // 8, g).requires_grad_()

    def step(loss_fn):

        def run():
            a4.grad = a8.grad = None
            loss_fn().backward()

        return run

    # interleaved rounds (old, new, new with m > 0), best of each: on a shared CPU the load
    # changes between rounds affect all three alike
    runs = [
        step(lambda: stride4_loss(image, [a4, a8])),
        step(lambda: new(image, [a4, a8], (s // 4, s // 4))),
        step(lambda: SLICLoss(1.0, m=1.0)(image, [a4, a8], (s // 4, s // 4)))
    ]
    best = [float('inf')] * len(runs)
    for _ in range(args.repeat):
        for i, run in enumerate(runs):
            best[i] = min(best[i], timed(run, 1))
    t_old, t_new, t_new_m = best
    print(f'fwd+bwd at {b}x3x{s}x{s} (CPU, {torch.get_num_threads()} threads, best of '
          f'{args.repeat}): stride-4 (old) {1e3 * t_old:.0f} ms, eq. 4 (new, m = 0) '
          f'{1e3 * t_new:.0f} ms (x{t_new / t_old:.2f}), eq. 4 with m > 0 {1e3 * t_new_m:.0f} '
          f'ms (x{t_new_m / t_old:.2f})')


if __name__ == '__main__':
    main()
