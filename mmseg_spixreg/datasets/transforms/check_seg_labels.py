# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""A pipeline step that rejects label maps with ids the model cannot learn, naming the file."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Check the loaded label map: class ids in ``[0, num_classes)`` or ``ignore_index`` only.

    mmseg does not check label ids: an id >= ``num_classes`` (e.g. 17 in an 11-class CamVid label,
    or raw Cityscapes ``labelIds`` instead of ``labelTrainIds``) reaches the cross-entropy, which
    fails with an index error that names neither the file nor the id (``IndexError: Target 17 is
    out of bounds``; on GPU a device-side assert), and the IoU metric silently drops such pixels.
    Put this step right after ``LoadAnnotations`` or ``LoadSegAnnotations`` (it sees the ids after
    the data set's ``label_map`` / ``reduce_zero_label``, i.e. what the loss will see): a bad label
    map raises a ``ValueError`` naming the file, the offending ids and their pixel count.

    With ``check_size=True`` it also requires the label map to have the size of the loaded image
    (use it where ``LoadAnnotations`` follows ``LoadImageFromFile`` directly; not in test
    pipelines that resize the image before loading full-resolution labels).

    A sample with neither ``gt_seg_map`` nor ``seg_map_path`` (a bare image, as mmseg's
    ``inference_model`` / ``MMSegInferencer`` feed the test pipeline) passes unchanged; a sample
    with ``seg_map_path`` but no loaded ``gt_seg_map`` (the step placed before the loader) is an
    error.

    Required keys: ``gt_seg_map`` and ``seg_map_path`` (both absent for bare images);
    ``img_shape``, ``img_path`` with ``check_size``. Modified keys: none.

    Args:
        num_classes (int): number of classes of the data set (after any class subset selected
            through ``metainfo``: the ids the model predicts).
        ignore_index (int): the label of unlabelled pixels. Default: 255.
        check_size (bool): also check that the label map and the image have the same height
            and width. Default: False.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, check_size: bool = False) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f'CheckSegLabels: num_classes must be a positive int, got '
                             f'{num_classes!r}')
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f'CheckSegLabels: ignore_index must be an int, got '
                             f'{ignore_index!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    def transform(self, results: dict) -> Optional[dict]:
        """Args:
            results (dict): the pipeline's result dict, after ``LoadAnnotations``.

        Returns:
            dict: ``results`` unchanged (also for a bare image without ``seg_map_path``).

        Raises:
            ValueError: label ids outside ``[0, num_classes)`` other than ``ignore_index``, or
                (``check_size``) a label map whose size differs from the image's.
        """
        seg = results.get('gt_seg_map')
        if seg is None:
            if results.get('seg_map_path') is None:
                return results  # a bare image (mmseg's inference APIs): no labels to check
            raise ValueError(f"CheckSegLabels: no 'gt_seg_map' in the results of "
                             f"{results['seg_map_path']}; put it after "
                             "dict(type='LoadSegAnnotations') (or LoadAnnotations) in the "
                             'pipeline')
        path = results.get('seg_map_path', '<label map without seg_map_path>')
        seg = np.asarray(seg)
        bad = (seg < 0) | (seg >= self.num_classes)
        bad &= seg != self.ignore_index
        if bad.any():
            ids = np.unique(seg[bad])
            shown = ', '.join(str(int(i)) for i in ids[:10]) + (', ...' if len(ids) > 10 else '')
            raise ValueError(
                f'{path}: label ids {shown} ({int(bad.sum())} pixels) are neither class ids '
                f'0..{self.num_classes - 1} nor the ignore index {self.ignore_index}. Convert the '
                'labels to train ids (see tools/dataset_converters/), map the ids through the '
                "data set's label_map (metainfo classes), or fix num_classes "
                f'({self.num_classes}) in the CheckSegLabels step and the model')
        if self.check_size and 'img_shape' in results:
            img_hw = tuple(int(v) for v in results['img_shape'][:2])
            if tuple(seg.shape[:2]) != img_hw:
                raise ValueError(
                    f'{path}: label map is {seg.shape[0]}x{seg.shape[1]} but its image '
                    f"{results.get('img_path', '')} is {img_hw[0]}x{img_hw[1]} (height x width); "
                    'labels must have the size of their image')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, check_size={self.check_size})')
