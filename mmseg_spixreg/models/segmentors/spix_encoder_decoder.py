# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""EncoderDecoder that also returns the superpixels of an HCFCN model (hard ids + soft A(s))."""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement, PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..backbones import DCNResNet
from ..decode_heads import HCFCNHead
from ..necks import AssignmentNeck
from ..utils import AssignedFeatures, BackboneFeatures


class SpixInference(NamedTuple):
    """What :meth:`SpixEncoderDecoder.encode_decode` and ``inference`` return (on the padded
    network input grid).

    Attributes:
        seg_logits (Tensor): (B, C, H, W) logits, as mmseg's ``inference`` returns them.
        superpixels (Tensor | None): (B, H, W) int64 hard superpixel ids (None: the head has
            none).
        assignments (list[Tensor] | None): the learned [A(4) (B, 9, H4, W4), A(8) ...], finest
            first, on the (padded) network input grid (None: no superpixel head, or slide
            inference, whose windows have no common hierarchy).
        levels (tuple[int] | None): the fine stride of each assignment, e.g. (4, 8).
    """
    seg_logits: Tensor
    superpixels: Optional[Tensor] = None
    assignments: Optional[List[Tensor]] = None
    levels: Optional[Tuple[int, ...]] = None


class _SlideWindows:
    """What mmseg's ``EncoderDecoder.slide_inference`` reads of its model, for a
    :class:`SpixEncoderDecoder`: ``test_cfg``, ``out_channels`` and an ``encode_decode`` that
    returns the window's logits (what mmseg's loop accumulates) and pastes the window's
    superpixels into ``superpixels`` (None: the model has none).

    mmseg's loop does not pass the window's position to ``encode_decode``; :meth:`windows` gives
    the same windows in the same order (mmseg's grid: rows then columns, the last row / column
    moved back inside the image), and each call checks that the crop it gets has its window's
    size. Superpixel ids are offset per window to stay unique; later windows overwrite
    overlaps.
    """

    def __init__(self, segmentor: 'SpixEncoderDecoder', inputs: Tensor) -> None:
        self.segmentor = segmentor
        self.test_cfg = segmentor.test_cfg
        self.out_channels = segmentor.out_channels
        batch_size, _, h_img, w_img = inputs.shape
        self.superpixels: Optional[Tensor] = None
        if segmentor.with_superpixels:
            self.superpixels = inputs.new_zeros((batch_size, h_img, w_img), dtype=torch.long)
        self._windows = iter(self.windows(h_img, w_img))
        self._offset = 0

    def windows(self, h_img: int, w_img: int) -> List[Tuple[int, int, int, int]]:
        """(y1, y2, x1, x2) of each window of ``slide_inference``, in its order."""
        (h_stride, w_stride), (h_crop, w_crop) = self.test_cfg.stride, self.test_cfg.crop_size
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
        return boxes

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        y1, y2, x1, x2 = next(self._windows)
        if tuple(inputs.shape[-2:]) != (y2 - y1, x2 - x1):
            raise RuntimeError(f'slide inference: window {(y1, y2, x1, x2)} expected, got a '
                               f'crop of size {tuple(inputs.shape[-2:])}')
        window = self.segmentor.encode_decode(inputs, batch_img_metas)
        if self.superpixels is not None:
            self.superpixels[:, y1:y2, x1:x2] = window.superpixels + self._offset
            self._offset += int(window.superpixels.max()) + 1
        return window.seg_logits


@MODELS.register_module()
class SpixEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` + the superpixel data flow + the model's superpixels in the
    predictions + build checks.

    Data flow (values, read by name): with an :class:`AssignmentNeck`, :meth:`extract_feat`
    gives the neck :class:`BackboneFeatures` (``DCNResNet.forward_pairs``: its stage outputs and
    feature pairs; any other backbone: its stage outputs, no pairs) and returns the neck's
    :class:`AssignedFeatures`, which the decode head (``HCFCNHead``) takes; the auxiliary heads
    get the plain tuple of stage outputs (``stages``), so their ``in_index`` means what it means
    in mmseg. Without an assignment neck everything is ``EncoderDecoder``'s.

    The superpixel maps travel as return values, following mmseg's pattern for models with
    other outputs (``DepthEstimator``): :meth:`encode_decode` (and through it mmseg's
    ``whole_inference``), :meth:`slide_inference` and mmseg's ``inference`` return a
    :class:`SpixInference` (logits + hard superpixels + assignments) and
    :meth:`postprocess_result` turns it into data samples. Each ``SegDataSample`` gets, besides
    ``pred_sem_seg``/``seg_logits``:

    * ``pred_superpixels = PixelData(data=LongTensor (1, H, W))``: hard superpixel ids (argmax
      of each level's assignment followed down the hierarchy), with exactly the geometry of
      ``pred_sem_seg`` (padding removed, flipped back, nearest-resized to ``ori_shape``). In
      slide mode the ids of each window are offset to stay unique (later windows overwrite
      overlaps).
    * ``pred_assignments = BaseDataElement(assignments=[A(4) (1, 9, h4, w4), A(8) (1, 9, h8,
      w8)], metainfo=dict(levels, img_shape, flip, flip_direction))`` (whole mode only): the
      model's soft assignments, for ASA by eq. 8. They stay in the *network's* geometry: an
      assignment relates a pixel to the 3x3 seeds of a fixed grid, so it cannot be flipped back
      or resized onto the original image's grid. ``img_shape`` is the network input without
      batch padding (the test pipeline's resized image), ``flip``/``flip_direction`` that of
      the input; the metric brings the ground truth into this geometry (nearest resize to
      ``img_shape``, then flip). Padding is removed down to the smallest grid the hierarchy
      allows (A(4) of ``4 * ceil(h / 16)`` rows for [A4, A8]: the image padded to a multiple of
      16, what the configs' ``test_cfg.size_divisor=16`` gives anyway); only a batch padded
      further (images of different sizes in one batch) loses the seeds beyond that grid.

    Also checks at build time that a head with superpixels has an assignment neck (and an
    assignment neck such a head) and that slide windows cover the image (ValueError); the
    assignment levels are the neck's alone (the head reads them from the neck's output). For
    test-time augmentation use :class:`SpixSegTTAModel`. Models whose decode head has no
    superpixels behave exactly as ``EncoderDecoder``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        neck = self.neck if self.with_neck else None
        if self.with_superpixels != isinstance(neck, AssignmentNeck):
            if self.with_superpixels:
                raise ValueError(f'{type(self.decode_head).__name__} needs an AssignmentNeck '
                                 '(model.neck) computing its assignments')
            raise ValueError(
                f'model.neck AssignmentNeck feeds an HCFCNHead (its AssignedFeatures are no '
                f'tuple of stage outputs), got decode_head {type(self.decode_head).__name__}')
        if self.with_superpixels and isinstance(self.decode_head.in_index, int):
            # the coarse logits come from the feature at in_index; the upsampling chain starts
            # on the coarse grid of the coarsest level
            got, need = neck.in_strides[self.decode_head.in_index], 2 * neck.levels[-1]
            if got != need:
                raise ValueError(
                    f'model.neck.levels={tuple(neck.levels)} needs the coarse logits at stride '
                    f'{need} (twice the coarsest level), but decode_head.in_index='
                    f'{self.decode_head.in_index} takes the stride-{got} backbone output '
                    f'(neck.in_strides={list(neck.in_strides)}); choose levels ending at '
                    f'{got // 2} or an in_index at stride {need}')
        test_cfg = self.test_cfg or {}
        if test_cfg.get('mode') == 'slide':
            crop, stride = test_cfg.get('crop_size'), test_cfg.get('stride')
            if crop is None or stride is None or len(crop) != 2 or len(stride) != 2 or any(
                    not 1 <= s <= c for s, c in zip(stride, crop)):
                raise ValueError(
                    'slide inference needs test_cfg crop_size=(h, w) and stride=(h, w) with '
                    f'1 <= stride <= crop_size (windows must cover the image), got crop_size='
                    f'{crop}, stride={stride}; set model.test_cfg.stride')

    @property
    def with_superpixels(self) -> bool:
        return isinstance(self.decode_head, HCFCNHead)

    def extract_feat(self, inputs: Tensor) -> Union[AssignedFeatures, Tuple[Tensor, ...]]:
        """With an :class:`AssignmentNeck`: the neck's :class:`AssignedFeatures` computed from
        the backbone's :class:`BackboneFeatures` (``DCNResNet.forward_pairs``, or any other
        backbone's stage outputs without pairs); otherwise ``EncoderDecoder``'s."""
        if not self.with_superpixels:
            return super().extract_feat(inputs)
        if isinstance(self.backbone, DCNResNet):
            feats = self.backbone.forward_pairs(inputs)
        else:
            feats = BackboneFeatures(self.backbone(inputs))
        return self.neck(feats)

    def _auxiliary_head_forward_train(self, inputs: Union[AssignedFeatures, Sequence[Tensor]],
                                      data_samples: SampleList) -> dict:
        """``EncoderDecoder``'s, on the plain tuple of stage outputs."""
        stages = inputs.stages if isinstance(inputs, AssignedFeatures) else inputs
        return super()._auxiliary_head_forward_train(stages, data_samples)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> SpixInference:
        """Logits, hard superpixels and assignments of ``inputs``.

        Args:
            inputs (Tensor): (B, 3, H, W).
            batch_img_metas (list[dict]): image meta infos.

        Returns:
            SpixInference: logits (B, C, H, W) (+ superpixels (B, H, W) and the neck's
            assignments when the head has superpixels).
        """
        x = self.extract_feat(inputs)
        seg_logits = self.decode_head.predict(x, batch_img_metas, self.test_cfg)
        if not self.with_superpixels:
            return SpixInference(seg_logits)
        spix = self.decode_head.predict_superpixels(x, seg_logits.shape[-2:])
        return SpixInference(seg_logits, spix, [a.detach() for a in x.assignments], x.levels)

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> SpixInference:
        """mmseg's ``slide_inference`` (its window loop computes the averaged logits), plus the
        windows' superpixels (see :class:`_SlideWindows`).

        Returns:
            SpixInference: averaged logits and window-offset superpixel ids (None without
            superpixels); no assignments
            (the windows have no common hierarchy, so ASA by eq. 8 is not defined here).
        """
        windows = _SlideWindows(self, inputs)
        seg_logits = EncoderDecoder.slide_inference(windows, inputs, batch_img_metas)
        return SpixInference(seg_logits, windows.superpixels)

    def postprocess_result(self,
                           outputs: Union[SpixInference, Tensor],
                           data_samples: OptSampleList = None) -> SampleList:
        """mmseg's ``postprocess_result`` + ``pred_superpixels`` and ``pred_assignments``.

        Args:
            outputs (SpixInference | Tensor): what :meth:`inference` returned (a plain logits
                tensor is post-processed exactly as by ``EncoderDecoder``).
            data_samples (list[SegDataSample], optional): with metainfo.

        Returns:
            list[SegDataSample]: ``pred_sem_seg``, ``seg_logits`` (+ ``pred_superpixels``,
            ``pred_assignments`` when the model has them).
        """
        if isinstance(outputs, Tensor):
            return super().postprocess_result(outputs, data_samples)
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(outputs.seg_logits.shape[0])]
        results = super().postprocess_result(outputs.seg_logits, data_samples)
        if outputs.superpixels is not None:
            self.postprocess_superpixels(outputs.superpixels, results, only_prediction)
        if outputs.assignments is not None:
            self.postprocess_assignments(outputs.assignments, outputs.levels,
                                         tuple(outputs.seg_logits.shape[-2:]), results,
                                         only_prediction)
        return results

    @staticmethod
    def _padding(meta: dict) -> Sequence[int]:
        return meta['img_padding_size'] if 'img_padding_size' in meta else \
            meta.get('padding_size', [0] * 4)

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
                left, right, top, bottom = self._padding(meta)
                s = s[:, top:H - bottom, left:W - right]
                if meta.get('flip', None):
                    s = s.flip(dims=(2, ) if meta.get('flip_direction') == 'horizontal' else (1, ))
                s = F.interpolate(
                    s[None].double(), size=tuple(meta['ori_shape'][:2]), mode='nearest')[0].long()
            sample.set_data({'pred_superpixels': PixelData(data=s)})
        return results

    def postprocess_assignments(self, assignments: List[Tensor], levels: Sequence[int],
                                input_size: Tuple[int, int], results: SampleList,
                                only_prediction: bool) -> SampleList:
        """Attach each image's assignments as ``pred_assignments`` (network geometry).

        Args:
            assignments (list[Tensor]): [A(s) (B, 9, H_s, W_s)] finest first, on the padded
                network input grid (B, 3, H, W) with ``H_s = H / s``.
            levels (Sequence[int]): fine stride s of each assignment.
            input_size (tuple[int, int]): (H, W) of the (padded) network input.
            results (list[SegDataSample]): samples to attach ``pred_assignments`` to.
            only_prediction (bool): no metainfo was given (nothing is cropped).
        """
        top_stride = 2 * int(levels[-1])
        for i, sample in enumerate(results):
            (h, w), flip, direction = input_size, False, None
            if not only_prediction:
                meta = sample.metainfo
                left, right, top, bottom = self._padding(meta)
                if left or top:
                    raise ValueError('pred_assignments: the network input was padded on the '
                                     f'left/top (padding {[left, right, top, bottom]}); '
                                     'assignments can only be cropped at the bottom/right')
                h, w = h - bottom, w - right
                flip = bool(meta.get('flip', False))
                direction = meta.get('flip_direction') if flip else None
            # the smallest grid of the hierarchy that covers the unpadded input
            gh, gw = -(-h // top_stride) * top_stride, -(-w // top_stride) * top_stride
            per_level = [
                a[i:i + 1, :, :gh // s, :gw // s].float() for a, s in zip(assignments, levels)
            ]
            sample.set_data({
                'pred_assignments':
                BaseDataElement(
                    assignments=per_level,
                    metainfo=dict(
                        levels=tuple(int(s) for s in levels),
                        img_shape=(h, w),
                        flip=flip,
                        flip_direction=direction))
            })
        return results
