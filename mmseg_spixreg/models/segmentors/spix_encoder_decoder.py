"""EncoderDecoder that also returns the hard superpixels of an HCFCN head (`pred_superpixels`)."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor


@MODELS.register_module()
class SpixEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` + ``pred_superpixels`` at test time + build-time checks.

    Why a segmentor subclass (and not only a head hook): a decode head's ``predict`` must return
    the logits tensor that ``EncoderDecoder.inference``/``postprocess_result`` consume, and it
    never sees the data samples; the padding removal, flip and resize to ``ori_shape`` happen in
    the segmentor. HCFCNHead therefore stays a plain ``BaseDecodeHead`` (it also runs in a stock
    ``EncoderDecoder``, without ``pred_superpixels``), and this class:

    * checks at build time that the neck's assignment levels equal the head's (ValueError);
    * in ``whole``/``slide`` inference also asks the head for its hard superpixels (slide: ids of
      each window are offset to stay unique, later windows overwrite overlaps);
    * after mmseg's ``postprocess_result`` attaches ``pred_superpixels = PixelData(data=LongTensor
      (1, H, W))`` with exactly the geometry of ``pred_sem_seg`` (padding removed, flipped back,
      nearest-resized to ``ori_shape``).

    For test-time augmentation use :class:`SpixSegTTAModel` (it states which view's superpixels
    the merged prediction keeps; mmseg's ``SegTTAModel`` keeps whatever its last view carried).
    Models whose decode head has no ``predict_superpixels`` behave exactly as ``EncoderDecoder``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        head_levels = getattr(self.decode_head, 'levels', None)
        neck_levels = getattr(self.neck, 'levels', None) if self.with_neck else None
        if head_levels is not None:
            if neck_levels is None:
                raise ValueError(f'{type(self.decode_head).__name__} needs an AssignmentNeck '
                                 '(model.neck) computing its assignment levels')
            if tuple(neck_levels) != tuple(head_levels):
                raise ValueError(f'assignment levels of the neck {tuple(neck_levels)} do not '
                                 f'match those of the decode head {tuple(head_levels)}')
        test_cfg = self.test_cfg or {}
        if test_cfg.get('mode') == 'slide':
            crop, stride = test_cfg.get('crop_size'), test_cfg.get('stride')
            if crop is None or stride is None or len(crop) != 2 or len(stride) != 2 or any(
                    not 1 <= s <= c for s, c in zip(stride, crop)):
                raise ValueError(
                    'slide inference needs test_cfg crop_size=(h, w) and stride=(h, w) with '
                    f'1 <= stride <= crop_size (windows must cover the image), got crop_size='
                    f'{crop}, stride={stride}; set model.test_cfg.stride')
        self._superpixels: Optional[Tensor] = None

    @property
    def with_superpixels(self) -> bool:
        return hasattr(self.decode_head, 'predict_superpixels')

    def _encode_decode_superpixels(self, inputs: Tensor, batch_img_metas: List[dict]):
        x = self.extract_feat(inputs)
        seg_logits = self.decode_head.predict(x, batch_img_metas, self.test_cfg)
        spix = self.decode_head.predict_superpixels(x, batch_img_metas) \
            if self.with_superpixels else None
        return seg_logits, spix

    def whole_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """As mmseg's; keeps the (B, H, W) superpixels for :meth:`predict`."""
        if not self.with_superpixels:
            return super().whole_inference(inputs, batch_img_metas)
        seg_logits, self._superpixels = self._encode_decode_superpixels(inputs, batch_img_metas)
        return seg_logits

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's sliding-window inference, also assembling window superpixels."""
        if not self.with_superpixels:
            return super().slide_inference(inputs, batch_img_metas)
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        batch_size, _, h_img, w_img = inputs.size()
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds = inputs.new_zeros((batch_size, self.out_channels, h_img, w_img))
        count_mat = inputs.new_zeros((batch_size, 1, h_img, w_img))
        spix = torch.zeros((batch_size, h_img, w_img), dtype=torch.long, device=inputs.device)
        offset = 0
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y1 = h_idx * h_stride
                x1 = w_idx * w_stride
                y2 = min(y1 + h_crop, h_img)
                x2 = min(x1 + w_crop, w_img)
                y1 = max(y2 - h_crop, 0)
                x1 = max(x2 - w_crop, 0)
                crop_img = inputs[:, :, y1:y2, x1:x2]
                batch_img_metas[0]['img_shape'] = crop_img.shape[2:]
                crop_logit, crop_spix = self._encode_decode_superpixels(crop_img, batch_img_metas)
                preds += F.pad(crop_logit, (int(x1), int(preds.shape[3] - x2), int(y1),
                                            int(preds.shape[2] - y2)))
                count_mat[:, :, y1:y2, x1:x2] += 1
                spix[:, y1:y2, x1:x2] = crop_spix + offset
                offset += int(crop_spix.max()) + 1
        assert (count_mat == 0).sum() == 0
        self._superpixels = spix
        return preds / count_mat

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """mmseg's predict; adds ``pred_superpixels`` when the head provides superpixels.

        Args:
            inputs (Tensor): (B, 3, H, W).
            data_samples (list[SegDataSample], optional): with metainfo.

        Returns:
            list[SegDataSample]: ``pred_sem_seg``, ``seg_logits`` and ``pred_superpixels``.
        """
        self._superpixels = None
        try:
            results = super().predict(inputs, data_samples)
            spix = self._superpixels
        finally:
            self._superpixels = None
        if spix is not None:
            self.postprocess_superpixels(spix, results, data_samples is None)
        return results

    def postprocess_superpixels(self, spix: Tensor, results: SampleList,
                                only_prediction: bool) -> SampleList:
        """The geometry of ``EncoderDecoder.postprocess_result`` with nearest resizing.

        Args:
            spix (Tensor): (B, H, W) int64 superpixel ids on the network input grid.
            results (list[SegDataSample]): samples to attach ``pred_superpixels`` to.
            only_prediction (bool): no metainfo was given (ids stay at input size).
        """
        _, H, W = spix.shape
        for i, sample in enumerate(results):
            s = spix[i:i + 1]
            if not only_prediction:
                meta = sample.metainfo
                padding = meta['img_padding_size'] if 'img_padding_size' in meta else \
                    meta.get('padding_size', [0] * 4)
                left, right, top, bottom = padding
                s = s[:, top:H - bottom, left:W - right]
                if meta.get('flip', None):
                    s = s.flip(dims=(2, ) if meta.get('flip_direction') == 'horizontal' else
                               (1, ))
                s = F.interpolate(s[None].double(), size=tuple(meta['ori_shape'][:2]),
                                  mode='nearest')[0].long()
            sample.set_data({'pred_superpixels': PixelData(data=s)})
        return results
