# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SegTTAModel that keeps the superpixels of the predictions (hard ids and soft assignments)."""
from typing import List

from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class SpixSegTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` (softmax-averaged views) + ``pred_superpixels`` and
    ``pred_assignments``.

    Superpixels cannot be averaged across views. mmseg's merge writes the averaged prediction
    into the *last* view's data sample, so whatever that view carried would end up in the
    result by accident. This class makes the choice explicit: the merged sample gets the
    ``pred_superpixels`` and the ``pred_assignments`` of the first view that has them (with
    mmseg's TTA pipelines: the first scale, not flipped). Each view's ``pred_superpixels`` is
    already in the original image geometry (``SpixEncoderDecoder`` flips and resizes it back);
    its ``pred_assignments`` stay in that view's network geometry and carry the view's
    ``img_shape``/``flip``/``flip_direction``, which the metric uses to bring the ground truth
    into it, so ASA (eq. 8) is correct whichever view they come from. Use it with
    ``tta_model = dict(type='SpixSegTTAModel')`` (the HCFCN configs do).
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Args:
            data_samples_list (list[list[SegDataSample]]): per image, the predictions of all
                views.

        Returns:
            list[SegDataSample]: merged predictions (with ``pred_superpixels`` and
            ``pred_assignments`` when available).
        """
        merged = super().merge_preds(data_samples_list)
        for out, views in zip(merged, data_samples_list):
            for key in ('pred_superpixels', 'pred_assignments'):
                for view in views:
                    if key in view:
                        out.set_data({key: view.get(key)})
                        break
        return merged
