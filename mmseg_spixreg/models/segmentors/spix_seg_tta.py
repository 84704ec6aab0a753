"""SegTTAModel that keeps the hard superpixels of the predictions."""
from typing import List

from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class SpixSegTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` (softmax-averaged views) + ``pred_superpixels``.

    Hard superpixels cannot be averaged across views. mmseg's merge writes the averaged
    prediction into the *last* view's data sample, so whatever that view carried (its own
    ``pred_superpixels`` in mmseg 1.2.2; nothing in versions that build a fresh sample) would
    end up in the result by accident. This class makes the choice explicit: the merged sample
    gets the superpixels of the first view that has them (with mmseg's TTA pipelines: the first
    scale, not flipped); each view's superpixels are already mapped back to the original image
    geometry by ``SpixEncoderDecoder``. Use it with ``tta_model = dict(type='SpixSegTTAModel')``
    (the HCFCN configs do).
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Args:
            data_samples_list (list[list[SegDataSample]]): per image, the predictions of all
                views.

        Returns:
            list[SegDataSample]: merged predictions (with ``pred_superpixels`` when available).
        """
        merged = super().merge_preds(data_samples_list)
        for out, views in zip(merged, data_samples_list):
            for view in views:
                if 'pred_superpixels' in view:
                    out.pred_superpixels = view.pred_superpixels
                    break
        return merged
