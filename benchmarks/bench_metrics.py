# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Throughput of SuperpixelBoundaryMetric (BR, BR_paper, ASA eq. 8, SpixASA, SpixBR) vs IoUMetric.

Both metrics see the same 101 CamVid val images (480x360) as data samples in the form mmengine's
Evaluator hands them over (dicts of tensors):

* ``gt_sem_seg``: the fine labels, void 11 -> 255;
* ``pred_sem_seg``: an oracle prediction, the ground truth shifted by ``--shift`` px (void -> 0);
* ``pred_superpixels``: hard superpixels of a stride-4 hierarchy stand-in, a regular grid of
  ``--cell`` x ``--cell`` cells (ids like an HCFCN model's finest learned level);
* ``pred_assignments``: random soft [A4, A8] on the 92x120 / 46x60 grids of a 360x480 input
  (the model's assignments, for ASA by eq. 8).

Timed: ``process`` over all samples + ``compute_metrics``, best of ``--repeat`` runs. Prints
per-image times and the throughput ratio SuperpixelBoundaryMetric / IoUMetric (with and without
superpixels). Run from the repository root::

    .venv/bin/python benchmarks/bench_metrics.py
"""
import argparse
import logging
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def random_assignment(h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """(1, 9, h, w) soft assignment: softmax of random logits over the in-map seeds."""
    from mmseg_spixreg.ops import valid_seed_mask
    logits = torch.randn(1, 9, h, w, generator=generator) * 2
    return logits.masked_fill(~valid_seed_mask(h, w), float('-inf')).softmax(1)


def load_samples(camvid: str, shift: int, cell: int, with_superpixels: bool = True):
    label_dir = osp.join(camvid, 'valannot')
    if not osp.isdir(label_dir):
        sys.exit(f'CamVid val labels not found at {label_dir}')
    samples = []
    for name in sorted(os.listdir(label_dir)):
        raw = cv2.imread(osp.join(label_dir, name), cv2.IMREAD_UNCHANGED)
        gt = np.where(raw == 11, 255, raw).astype(np.int64)
        h, w = gt.shape
        pred = np.pad(raw, ((shift, 0), (shift, 0)), mode='edge')[:h, :w].astype(np.int64)
        pred[pred == 11] = 0
        sample = dict(
            img_path=name,
            gt_sem_seg=dict(data=torch.from_numpy(gt)[None]),
            pred_sem_seg=dict(data=torch.from_numpy(pred)[None]))
        if with_superpixels:
            ys, xs = np.mgrid[0:h, 0:w]
            spix = (ys // cell) * ((w + cell - 1) // cell) + xs // cell
            sample['pred_superpixels'] = dict(data=torch.from_numpy(spix)[None])
            g = torch.Generator().manual_seed(len(samples))
            h4, w4 = 4 * -(-h // 16), 4 * -(-w // 16)
            sample['pred_assignments'] = dict(
                assignments=[random_assignment(h4, w4, g),
                             random_assignment(h4 // 2, w4 // 2, g)],
                img_shape=(h, w),
                flip=False,
                flip_direction=None,
                levels=(4, 8))
        samples.append(sample)
    return samples


def time_metric(metric, samples, repeat: int, batch_size: int = 1) -> float:
    best = float('inf')
    for _ in range(repeat):
        metric.results.clear()
        start = time.perf_counter()
        for i in range(0, len(samples), batch_size):
            metric.process({}, samples[i:i + batch_size])
        metric.compute_metrics(metric.results)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--camvid', default=osp.join(ROOT, '..', 'shared', 'data', 'camvid'))
    parser.add_argument('--shift', type=int, default=3)
    parser.add_argument('--cell', type=int, default=4)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()

    from mmengine.logging import MMLogger
    from mmseg.evaluation import IoUMetric

    from mmseg_spixreg.evaluation import SuperpixelBoundaryMetric
    logger = MMLogger.get_instance('bench_metrics', log_level='WARNING')
    logger.setLevel(logging.WARNING)  # keep the per-run tables out of the timing output

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    samples = load_samples(args.camvid, args.shift, args.cell)
    samples_plain = [{
        k: v
        for k, v in s.items() if k not in ('pred_superpixels', 'pred_assignments')
    } for s in samples]
    n = len(samples)
    meta = dict(classes=tuple(str(i) for i in range(11)))

    iou = IoUMetric(iou_metrics=['mIoU'])
    iou.dataset_meta = meta
    spx = SuperpixelBoundaryMetric()
    spx.dataset_meta = meta
    t_iou = time_metric(iou, samples, args.repeat)
    t_full = time_metric(spx, samples, args.repeat)
    res = spx.compute_metrics(spx.results)
    t_plain = time_metric(spx, samples_plain, args.repeat)
    # the thesis's own code's keys too (PixAcc_orig, ASA_orig; BR_orig is always on)
    orig = SuperpixelBoundaryMetric(protocol='original')
    orig.dataset_meta = meta
    t_orig = time_metric(orig, samples, args.repeat)

    print(f'{n} CamVid val images (480x360), oracle shift {args.shift} px, '
          f'{args.cell}x{args.cell} grid superpixels, best of {args.repeat}, 1 thread')
    print(f'  IoUMetric                                : {1e3 * t_iou / n:7.2f} ms/img  '
          f'({n / t_iou:7.1f} img/s)')
    print(f'  SuperpixelBoundaryMetric (all keys)      : {1e3 * t_full / n:7.2f} ms/img  '
          f'({n / t_full:7.1f} img/s)')
    print(f'  SuperpixelBoundaryMetric (no superpixels): {1e3 * t_plain / n:7.2f} ms/img  '
          f'({n / t_plain:7.1f} img/s)')
    print(f"  SuperpixelBoundaryMetric(protocol='original'), all keys: {1e3 * t_orig / n:7.2f} "
          f'ms/img (x{t_orig / t_full:.2f} the default)')
    print(f'  throughput ratio SuperpixelBoundaryMetric / IoUMetric: {t_iou / t_full:.2f} with '
          f'superpixels, {t_iou / t_plain:.2f} without (time ratio {t_full / t_iou:.2f} / '
          f'{t_plain / t_iou:.2f})')
    print('  metric values: ' + ', '.join(f'{k} {v:.2f}' for k, v in res.items()))

    # Sanity of BR on real data: oracle = ground truth shifted by k px (right and down).
    from mmseg_spixreg.evaluation import boundary_recall_counts
    gts = [s['gt_sem_seg']['data'][0].numpy() for s in samples]
    line = []
    for k in range(0, 9):
        tp = n_gt = 0
        for gt in gts:
            h, w = gt.shape
            shifted = np.pad(gt, ((k, 0), (k, 0)), mode='edge')[:h, :w]
            a, b = boundary_recall_counts(shifted, gt)
            tp, n_gt = tp + a, n_gt + b
        line.append(f'k={k}: {100 * tp / n_gt:.2f}')
    print('BR (%) of the ground truth shifted by k px, pooled over the images, r=2: ' +
          ', '.join(line))


if __name__ == '__main__':
    main()
