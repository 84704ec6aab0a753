# Copyright (c) mmseg-spixreg contributors. All rights reserved.
import logging
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ..functional import (asa_counts, asa_from_assignments_counts, asa_original,
                          boundary_recall_counts, boundary_recall_original, pixel_accuracy_original)

PROTOCOLS = ('paper', 'original')


def _to_numpy(data) -> np.ndarray:
    """(1, H, W) / (H, W) tensor or array -> (H, W) numpy array."""
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data


def _get(sample, key, default=None):
    """``sample[key]`` for the dicts the Evaluator passes and for data elements alike."""
    if isinstance(sample, dict):
        return sample.get(key, default)
    return getattr(sample, key, default)


def gt_in_network_geometry(gt: np.ndarray,
                           img_shape: Sequence[int],
                           flip: bool = False,
                           flip_direction: Optional[str] = None) -> np.ndarray:
    """Bring a ground-truth map (original size) into the geometry the network saw.

    Nearest resize to ``img_shape`` (the test pipeline's resized image, without batch padding)
    and the test-time flip of the input, so that it lines up with ``pred_assignments``.

    Args:
        gt (np.ndarray): (H, W) integer labels at the original size.
        img_shape (Sequence[int]): (h, w) of the network input without padding.
        flip (bool): whether the input was flipped.
        flip_direction (str, optional): 'horizontal' or 'vertical'.

    Returns:
        np.ndarray: (h, w) int64 labels.
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    out = torch.from_numpy(np.ascontiguousarray(gt).astype(np.int64))
    if tuple(out.shape) != (h, w):
        out = F.interpolate(out[None, None].double(), size=(h, w), mode='nearest')[0, 0].long()
    if flip:
        if flip_direction not in ('horizontal', 'vertical'):
            raise ValueError(f'unknown flip_direction {flip_direction!r} in pred_assignments')
        out = out.flip(dims=(1, ) if flip_direction == 'horizontal' else (0, ))
    return out.numpy()


@METRICS.register_module()
class SuperpixelBoundaryMetric(BaseMetric):
    """Pixel accuracy, boundary recall (standard and eq. 7), ASA (eq. 8 and hard) and ClsErr.

    Meant to run beside mmseg's ``IoUMetric``::

        val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='SuperpixelBoundaryMetric')]

    Reported keys (percentages, pooled over the whole dataset: sums of per-image counts, not
    means of per-image ratios):

    * ``PixAcc``: labelled pixels predicted correctly / labelled pixels (same as ``aAcc``).
    * ``BR``: standard (Stutz) boundary recall of ``pred_sem_seg`` against the ground truth
      (:func:`boundary_recall_counts`, ``mode='stutz'``; boundaries against ignored pixels do
      not count).
    * ``BR_paper``: eq. 7 of the paper (``mode='paper'``): predicted boundary pixels within r
      of a ground-truth boundary over those plus the ground-truth boundary pixels missed.
    * Only if the data samples carry ``pred_assignments`` (``SpixEncoderDecoder`` in whole
      mode), computed on those samples:

      * ``ASA``: eq. 8, ``ACC(q(y, A), y)``: the one-hot labels reconstructed through the
        model's soft assignments (:func:`asa_from_assignments_counts`). Computed in the
        network's input geometry: the ground truth is nearest-resized to the network input
        size (``img_shape`` of ``pred_assignments``, the test pipeline's resized image without
        padding) and flipped like the input; equal to the original geometry when the test
        pipeline does not resize.
      * ``ClsErr``: ``ASA - PixAcc`` (``PixAcc`` over the same samples). Not bounded below by
        0: the classifier's own logits are not restricted to reconstructed labels.

    * Only if the data samples carry ``pred_superpixels`` (hard superpixels):

      * ``SpixASA``: achievable segmentation accuracy of the hard superpixels (argmax down the
        hierarchy), the common superpixel benchmark quantity.
      * ``SpixBR``: Stutz boundary recall of the hard-superpixel boundaries (if
        ``superpixel_br``). A recall only: many small superpixels reach ~100 %, so read it
        together with SpixASA and the number of superpixels.

    Samples without these fields (stock mmseg segmentors) only get ``PixAcc``, ``BR`` and
    ``BR_paper`` (and ``BR_orig``).

    As the thesis's own code measures (keys ``*_orig``; per image, then the **mean over
    images**, not pooled counts; see configs/original/README.md):

    * ``BR_orig`` (always): :func:`boundary_recall_original`: 8-connected boundaries, hood
      ``r = round(0.0025 * diagonal)``, pixels next to void removed, ``tp / (tp + fn + 1e-5)``.
      Comparable with the thesis's BR tables.
    * with ``protocol='original'`` also ``PixAcc_orig`` (:func:`pixel_accuracy_original`) and,
      on samples with ``pred_assignments``, ``ASA_orig`` (:func:`asa_original`: bilinear
      resampling of the one-hot labels, in the same geometry as ``ASA``).

    Args:
        ignore_index (int): Ground-truth label ignored everywhere. Defaults to 255.
        br_tolerance (int, optional): BR tolerance r in pixels; None for
            ``round(0.0025 * image diagonal)`` per image. Defaults to None.
        superpixel_br (bool): Also report ``SpixBR``. Defaults to True.
        num_classes (int, optional): classes of the one-hot encoding in eq. 8; None: the
            number of ``classes`` in the dataset meta. Defaults to None.
        protocol (str): 'paper' (the thesis text; ``BR_orig`` is reported beside it) or
            'original' (adds ``PixAcc_orig`` and ``ASA_orig``). Defaults to 'paper'.
        collect_device (str): Device for collecting results across ranks, 'cpu' or 'gpu'.
            Defaults to 'cpu'.
        prefix (str, optional): Prefix prepended to the metric names. Defaults to None.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 br_tolerance: Optional[int] = None,
                 superpixel_br: bool = True,
                 num_classes: Optional[int] = None,
                 protocol: str = 'paper',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if br_tolerance is not None and br_tolerance < 0:
            raise ValueError(f'br_tolerance must be None or >= 0, got {br_tolerance}')
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f'num_classes must be None or a positive int, got {num_classes!r}')
        if protocol not in PROTOCOLS:
            raise ValueError(f'SuperpixelBoundaryMetric: protocol must be one of {PROTOCOLS}, '
                             f'got {protocol!r}')
        self.protocol = protocol
        self.ignore_index = ignore_index
        self.br_tolerance = br_tolerance
        self.superpixel_br = superpixel_br
        self.num_classes = num_classes

    def _num_classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise ValueError('SuperpixelBoundaryMetric: ASA (eq. 8) needs the number of classes: '
                             'set num_classes or run it with a dataset that has `classes`')
        return len(classes)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate per-image counts.

        Args:
            data_batch (dict): A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts with ``pred_sem_seg.data``
                (1, H, W), ``gt_sem_seg.data`` (1, H, W) and optionally
                ``pred_superpixels.data`` (1, H, W) and ``pred_assignments`` (``assignments``
                [A4 (1, 9, h4, w4), A8 (1, 9, h8, w8)] + metainfo ``img_shape``, ``flip``,
                ``flip_direction``). Samples without ``gt_sem_seg`` are skipped.
        """
        for data_sample in data_samples:
            if _get(data_sample, 'gt_sem_seg') is None:
                continue  # e.g. a test set without labels (IoUMetric's format_only case)
            name = _get(data_sample, 'img_path')
            pred = _to_numpy(_get(_get(data_sample, 'pred_sem_seg'), 'data'))
            gt = _to_numpy(_get(_get(data_sample, 'gt_sem_seg'), 'data'))
            if pred.shape != gt.shape:
                raise ValueError(f'pred_sem_seg {pred.shape} and gt_sem_seg {gt.shape} differ '
                                 f'for {name}')
            self._check_labels(gt, name)
            labelled = gt != self.ignore_index
            result = dict(
                correct=int(np.count_nonzero((pred == gt) & labelled)),
                labelled=int(np.count_nonzero(labelled)))
            result['br_tp'], result['br_n'] = boundary_recall_counts(
                pred, gt, r=self.br_tolerance, ignore_index=self.ignore_index, mode='stutz')
            result['brp_num'], result['brp_den'] = boundary_recall_counts(
                pred, gt, r=self.br_tolerance, ignore_index=self.ignore_index, mode='paper')
            result['br_orig'] = boundary_recall_original(
                pred, gt, r=self.br_tolerance, ignore_index=self.ignore_index)
            if self.protocol == 'original':
                result['pixacc_orig'] = pixel_accuracy_original(pred, gt, self.ignore_index)
            assign = _get(data_sample, 'pred_assignments')
            if assign is not None:
                gt_net = gt_in_network_geometry(gt, _get(assign, 'img_shape'),
                                                bool(_get(assign, 'flip', False)),
                                                _get(assign, 'flip_direction'))
                maps, levels = list(_get(assign, 'assignments')), _get(assign, 'levels')
                result['asa_correct'], result['asa_labelled'] = asa_from_assignments_counts(
                    gt_net, maps, self._num_classes(), self.ignore_index, levels)
                if self.protocol == 'original':
                    result['asa_orig'] = asa_original(gt_net, maps, self._num_classes(),
                                                      self.ignore_index, levels)
            spix = _get(data_sample, 'pred_superpixels')
            if spix is not None:
                spix = _to_numpy(_get(spix, 'data'))
                if spix.shape != gt.shape:
                    raise ValueError(f'pred_superpixels {spix.shape} and gt_sem_seg {gt.shape} '
                                     f'differ for {name}')
                result['spix_asa_best'], _ = asa_counts(spix, gt, ignore_index=self.ignore_index)
                if self.superpixel_br:
                    result['spix_br_tp'], result['spix_br_n'] = boundary_recall_counts(
                        spix, gt, r=self.br_tolerance, ignore_index=self.ignore_index)
            self.results.append(result)

    def _check_labels(self, gt: np.ndarray, name: Optional[str]) -> None:
        """Ground-truth labels must be integer class ids >= 0 or the ignore index (a float or
        negative map is a wrong file or a wrong transform, not something to score)."""
        if not (np.issubdtype(gt.dtype, np.integer) or gt.dtype == np.bool_):
            raise ValueError(f'SuperpixelBoundaryMetric: gt_sem_seg of {name} must hold integer '
                             f'class ids, got dtype {gt.dtype}')
        negative = np.unique(gt[(gt < 0) & (gt != self.ignore_index)])
        if negative.size:
            raise ValueError(f'SuperpixelBoundaryMetric: gt_sem_seg of {name} has negative '
                             f'labels {negative[:10].tolist()} (class ids are >= 0, ignore is '
                             f'{self.ignore_index})')

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Pool the per-image counts into dataset-level metrics.

        Args:
            results (list[dict]): Per-image count dicts from :meth:`process`.

        Returns:
            dict[str, float]: ``PixAcc``, ``BR``, ``BR_paper`` (and ``ASA``, ``ClsErr`` with
            assignments; ``SpixASA``, ``SpixBR`` with hard superpixels), in percent.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            print_log(
                'SuperpixelBoundaryMetric: no data sample with gt_sem_seg, nothing to '
                'evaluate',
                logger,
                level=logging.WARNING)
            return {}

        def ratio(num: int, den: int) -> float:
            return 100.0 * num / den if den > 0 else float('nan')

        def total(key: str, rows: List[dict]) -> int:
            return int(sum(row[key] for row in rows))

        metrics = OrderedDict()
        metrics['PixAcc'] = ratio(total('correct', results), total('labelled', results))
        metrics['BR'] = ratio(total('br_tp', results), total('br_n', results))
        metrics['BR_paper'] = ratio(total('brp_num', results), total('brp_den', results))
        # the original protocol: per-image values, mean over images
        metrics['BR_orig'] = 100.0 * float(np.mean([row['br_orig'] for row in results]))
        if self.protocol == 'original':
            metrics['PixAcc_orig'] = 100.0 * float(np.mean([row['pixacc_orig'] for row in results]))
        with_assign = [row for row in results if 'asa_correct' in row]
        if with_assign:
            asa = ratio(total('asa_correct', with_assign), total('asa_labelled', with_assign))
            metrics['ASA'] = asa
            metrics['ClsErr'] = asa - ratio(
                total('correct', with_assign), total('labelled', with_assign))
            if self.protocol == 'original':
                metrics['ASA_orig'] = 100.0 * float(
                    np.mean([row['asa_orig'] for row in with_assign]))
        with_spix = [row for row in results if 'spix_asa_best' in row]
        if with_spix:
            metrics['SpixASA'] = ratio(
                total('spix_asa_best', with_spix), total('labelled', with_spix))
            if self.superpixel_br:
                metrics['SpixBR'] = ratio(
                    total('spix_br_tp', with_spix), total('spix_br_n', with_spix))

        # a zero denominator (no labelled pixel / no ground-truth boundary in the whole set):
        # the metric is undefined; leave it out and say why instead of returning NaN
        undefined = [key for key, value in metrics.items() if not math.isfinite(value)]
        if undefined:
            print_log(
                f'SuperpixelBoundaryMetric: {", ".join(undefined)} left out: undefined on these '
                f'{len(results)} images (their ground truth has no labelled pixel or no labelled '
                'boundary pixel: all ignore, or one class)',
                logger,
                level=logging.WARNING)
            metrics = OrderedDict((k, v) for k, v in metrics.items() if k not in undefined)
        table = PrettyTable()
        table.field_names = list(metrics.keys())
        table.add_row([f'{value:.2f}' for value in metrics.values()])
        print_log(
            f'superpixel/boundary results ({len(results)} images; ASA (eq. 8) on '
            f'{len(with_assign)} with pred_assignments, SpixASA on {len(with_spix)} with '
            f'pred_superpixels; BR tolerance '
            f"{'round(0.0025*diag)' if self.br_tolerance is None else self.br_tolerance} px):",
            logger)
        print_log('\n' + table.get_string(), logger=logger)
        return {key: round(float(value), 4) for key, value in metrics.items()}
