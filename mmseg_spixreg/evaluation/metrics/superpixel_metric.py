# Copyright (c) mmseg_spixreg contributors. All rights reserved.
import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from mmseg.registry import METRICS
from ..functional import asa_counts, boundary_recall_counts


def _to_numpy(data) -> np.ndarray:
    """(1, H, W) / (H, W) tensor or array -> (H, W) numpy array."""
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data


@METRICS.register_module()
class SuperpixelBoundaryMetric(BaseMetric):
    """Pixel accuracy, boundary recall, ASA and classification error.

    Meant to run beside mmseg's ``IoUMetric``::

        val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='SuperpixelBoundaryMetric')]

    Reported keys (percentages, pooled over the whole dataset: sums of per-image counts, not
    means of per-image ratios):

    * ``PixAcc``: labelled pixels predicted correctly / labelled pixels (same as ``aAcc``).
    * ``BR``: boundary recall of the predicted segmentation ``pred_sem_seg`` against the ground
      truth (:func:`boundary_recall_counts`; boundaries against ignored pixels do not count).
    * Only if the data samples carry ``pred_superpixels`` (HCFCN models at test time; see
      DESIGN_NOTES.md), computed on those samples:

      * ``ASA``: achievable segmentation accuracy of the hard superpixels.
      * ``ClsErr``: classification error ``ASA - PixAcc`` (``PixAcc`` over the same samples):
        the part of the error the classifier makes although the superpixels would allow it to
        be right; ``1 - PixAcc = (1 - ASA) + ClsErr``.
      * ``SpixBR``: boundary recall of the hard-superpixel boundaries (if ``superpixel_br``).
        A recall only: many small superpixels (e.g. a regular 4x4 grid) reach ~100 %, so read
        it together with ASA and the number of superpixels.

    Samples without ``pred_superpixels`` (stock mmseg segmentors) only get ``PixAcc`` and ``BR``.

    Args:
        ignore_index (int): Ground-truth label ignored everywhere. Defaults to 255.
        br_tolerance (int, optional): BR tolerance r in pixels; None for
            ``round(0.0025 * image diagonal)`` per image. Defaults to None.
        superpixel_br (bool): Also report ``SpixBR``. Defaults to True.
        collect_device (str): Device for collecting results across ranks, 'cpu' or 'gpu'.
            Defaults to 'cpu'.
        prefix (str, optional): Prefix prepended to the metric names. Defaults to None.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 br_tolerance: Optional[int] = None,
                 superpixel_br: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if br_tolerance is not None and br_tolerance < 0:
            raise ValueError(f'br_tolerance must be None or >= 0, got {br_tolerance}')
        self.ignore_index = ignore_index
        self.br_tolerance = br_tolerance
        self.superpixel_br = superpixel_br

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate per-image counts.

        Args:
            data_batch (dict): A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts with ``pred_sem_seg.data``
                (1, H, W), ``gt_sem_seg.data`` (1, H, W) and optionally
                ``pred_superpixels.data`` (1, H, W). Samples without ``gt_sem_seg`` are
                skipped.
        """
        for data_sample in data_samples:
            if 'gt_sem_seg' not in data_sample:
                continue  # e.g. a test set without labels (IoUMetric's format_only case)
            pred = _to_numpy(data_sample['pred_sem_seg']['data'])
            gt = _to_numpy(data_sample['gt_sem_seg']['data'])
            if pred.shape != gt.shape:
                raise ValueError(f'pred_sem_seg {pred.shape} and gt_sem_seg {gt.shape} differ '
                                 f"for {data_sample.get('img_path')}")
            labelled = gt != self.ignore_index
            result = dict(
                correct=int(np.count_nonzero((pred == gt) & labelled)),
                labelled=int(np.count_nonzero(labelled)))
            result['br_tp'], result['br_n'] = boundary_recall_counts(
                pred, gt, r=self.br_tolerance, ignore_index=self.ignore_index)
            spix = data_sample.get('pred_superpixels')
            if spix is not None:
                spix = _to_numpy(spix['data'])
                if spix.shape != gt.shape:
                    raise ValueError(
                        f'pred_superpixels {spix.shape} and gt_sem_seg {gt.shape} differ '
                        f"for {data_sample.get('img_path')}")
                result['asa_best'], _ = asa_counts(spix, gt, ignore_index=self.ignore_index)
                if self.superpixel_br:
                    result['spix_br_tp'], result['spix_br_n'] = boundary_recall_counts(
                        spix, gt, r=self.br_tolerance, ignore_index=self.ignore_index)
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Pool the per-image counts into dataset-level metrics.

        Args:
            results (list[dict]): Per-image count dicts from :meth:`process`.

        Returns:
            dict[str, float]: ``PixAcc`` and ``BR`` (and ``ASA``, ``ClsErr``, ``SpixBR`` when
            superpixels were present), in percent.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            print_log('SuperpixelBoundaryMetric: no data sample with gt_sem_seg, nothing to '
                      'evaluate', logger, level=logging.WARNING)
            return {}

        def ratio(num: int, den: int) -> float:
            return 100.0 * num / den if den > 0 else float('nan')

        def total(key: str, rows: List[dict]) -> int:
            return int(sum(row[key] for row in rows))

        metrics = OrderedDict()
        metrics['PixAcc'] = ratio(total('correct', results), total('labelled', results))
        metrics['BR'] = ratio(total('br_tp', results), total('br_n', results))
        with_spix = [row for row in results if 'asa_best' in row]
        if with_spix:
            spix_labelled = total('labelled', with_spix)
            asa = ratio(total('asa_best', with_spix), spix_labelled)
            metrics['ASA'] = asa
            metrics['ClsErr'] = asa - ratio(total('correct', with_spix), spix_labelled)
            if self.superpixel_br:
                metrics['SpixBR'] = ratio(
                    total('spix_br_tp', with_spix), total('spix_br_n', with_spix))

        table = PrettyTable()
        table.field_names = list(metrics.keys())
        table.add_row([f'{value:.2f}' for value in metrics.values()])
        print_log(
            f'superpixel/boundary results ({len(results)} images, ASA on {len(with_spix)} '
            f'with pred_superpixels, BR tolerance '
            f"{'round(0.0025*diag)' if self.br_tolerance is None else self.br_tolerance} px):",
            logger)
        print_log('\n' + table.get_string(), logger=logger)
        return {key: round(float(value), 4) for key, value in metrics.items()}
