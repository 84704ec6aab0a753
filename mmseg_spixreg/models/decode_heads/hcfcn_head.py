# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""HCFCN decode head: coarse classifier + hierarchical superpixel upsampling of the logits."""
import copy
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from ...ops import hard_superpixels, superpixel_upsample_hierarchy
from ..utils import AssignedFeatures


@MODELS.register_module()
class HCFCNHead(BaseDecodeHead):
    """HCFCN head (Suzuki 2021): logits on z(16), superpixel-upsampled 16 -> 8 -> 4 (eq. 2).

    Its input is the :class:`AssignmentNeck`'s output, :class:`AssignedFeatures` (anything
    else: a ValueError naming it), read by name: ``forward`` classifies the coarse feature
    (:meth:`coarse_logits`: ``stages[in_index]``, ``num_convs`` ConvModules then dropout + 1x1
    ``conv_seg``, as mmseg's ``FCNHead``; or any mmseg decode head given as ``logits_head``, fed
    the plain tuple ``stages``, e.g. an ``ASPPHead`` to turn DeepLabV3 into HCFCN-DeepLabV3) and
    upsamples the logits with the neck's ``assignments``, coarsest level first. The levels are
    the neck's (``levels``, e.g. (4, 8): stride-16 logits upsampled to stride 4); the head has no
    levels of its own. It returns logits at the finest level's stride; mmseg's usual bilinear
    resize does 4 -> 1 in ``loss_by_feat`` / ``predict_by_feat``. ``SpixEncoderDecoder`` builds
    the neck's input and gives the auxiliary heads the plain tuple ``stages``.

    Loss: the ``loss_decode`` losses (CE) on the resized logits, plus, when ``loss_slic`` is given
    with ``loss_weight`` (lambda) > 0, the SLIC regulariser on the data samples' ``slic_image``
    (stored by ``SpixSegDataPreProcessor``) under its ``loss_name`` (``loss_slic``). With
    ``supervised=False`` only L_SLIC is computed and no label is read (paper's Table IV mode).

    Superpixels: :meth:`predict_superpixels` returns the hard superpixels (argmax of each level,
    pushed down the hierarchy by ``mmseg_spixreg.ops.hard_superpixels``) resized (nearest) to a
    given size; ``SpixEncoderDecoder`` passes the size of the logits ``predict`` returned (mmseg's
    ``predict_by_feat``) and attaches them to the predictions as ``pred_superpixels``.

    Args:
        num_convs (int): ConvModules before the classifier (0: ``conv_seg`` directly on the
            coarse feature; then ``channels`` must equal ``in_channels``). Default: 0.
        kernel_size (int): kernel size of those convs. Default: 3.
        logits_head (dict, optional): config of an mmseg decode head computing the coarse
            logits instead (its ``forward`` gets all inputs). Its logits must be at stride 16
            (twice the coarsest assignment level: (B, C, H/16, W/16) for levels (4, 8)), e.g.
            ``ASPPHead`` / ``PSPHead`` on a backbone at output stride 16; a head at another
            stride (DeepLabV3+'s ``DepthwiseSeparableASPPHead``: stride 4) raises a
            ``ValueError`` naming the stride. Missing keys among in_channels, channels,
            in_index, input_transform, num_classes, dropout_ratio, conv_cfg, norm_cfg,
            act_cfg, align_corners, ignore_index default to this head's.
        loss_slic (dict, optional): SLICLoss config; None or ``loss_weight=0`` disables it
            (SLICLoss defaults to lambda = 1.0, as every mmseg loss: configs state lambda).
        supervised (bool): compute the ``loss_decode`` losses (needs labels). Default: True.
        **kwargs: BaseDecodeHead arguments (in_channels, channels, num_classes, in_index, ...).
    """

    def __init__(self,
                 num_convs: int = 0,
                 kernel_size: int = 3,
                 logits_head: Optional[dict] = None,
                 loss_slic: Optional[dict] = None,
                 supervised: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.supervised = supervised
        self.loss_slic = MODELS.build(loss_slic) if loss_slic is not None else None
        if not supervised and not self.with_slic_loss:
            raise ValueError('HCFCNHead: supervised=False needs loss_slic with loss_weight > 0 '
                             '(otherwise there is no loss at all)')
        if num_convs < 0:
            raise ValueError(f'HCFCNHead: num_convs must be >= 0, got {num_convs}')
        self.logits_head = None
        if logits_head is not None:
            cfg = copy.deepcopy(logits_head)
            for key in ('in_channels', 'channels', 'in_index', 'input_transform', 'num_classes',
                        'dropout_ratio', 'conv_cfg', 'norm_cfg', 'act_cfg', 'align_corners',
                        'ignore_index'):
                cfg.setdefault(key, getattr(self, key))
            cfg.setdefault('out_channels', self.out_channels)
            self.logits_head = MODELS.build(cfg)
            if self.logits_head.out_channels != self.out_channels:
                raise ValueError('HCFCNHead: logits_head must predict out_channels='
                                 f'{self.out_channels}, got {self.logits_head.out_channels}')
            # the wrapped head owns the classifier
            del self.conv_seg
            self.dropout = None
            self.init_cfg = None
            self.convs = None
        else:
            if num_convs == 0 and self.in_channels != self.channels:
                raise ValueError('HCFCNHead: with num_convs=0 channels must equal in_channels '
                                 f'({self.channels} != {self.in_channels})')
            convs = []
            for i in range(num_convs):
                convs.append(
                    ConvModule(
                        self.in_channels if i == 0 else self.channels,
                        self.channels,
                        kernel_size=kernel_size,
                        padding=kernel_size // 2,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                        act_cfg=self.act_cfg))
            self.convs = nn.Sequential(*convs) if convs else nn.Identity()

    @property
    def with_slic_loss(self) -> bool:
        return self.loss_slic is not None and self.loss_slic.loss_weight > 0

    @staticmethod
    def _check_inputs(inputs: AssignedFeatures) -> AssignedFeatures:
        if not isinstance(inputs, AssignedFeatures):
            raise ValueError(
                'HCFCNHead needs AssignedFeatures (stages, assignments, levels, fine_sizes), '
                f'the output of an AssignmentNeck, got {type(inputs).__name__}: set '
                "model.neck=dict(type='AssignmentNeck', ...) in a SpixEncoderDecoder")
        return inputs

    def coarse_logits(self, inputs: AssignedFeatures) -> Tensor:
        """Classifier on the coarse feature ``inputs.stages[in_index]`` (stride ``2 *
        levels[-1]`` of the neck's levels, 16 for (4, 8)), or ``logits_head`` on
        ``inputs.stages``. Returns (B, out_channels, h, w)."""
        stages = self._check_inputs(inputs).stages
        if self.logits_head is not None:
            return self.logits_head(stages)
        x = self._transform_inputs(stages)
        return self.cls_seg(self.convs(x))

    def upsample_logits(self, logits: Tensor, assignments: Sequence[Tensor],
                        fine_sizes: Sequence[Tuple[int, int]]) -> Tensor:
        """Superpixel upsampling through every level, coarsest first.

        Args:
            logits (Tensor): (B, C, h, w) on the coarse grid of the coarsest level.
            assignments (Sequence[Tensor]): finest first, (B, 9, He_s, We_s) each.
            fine_sizes (Sequence[tuple[int, int]]): true fine size per level (the result is cropped
                to ``fine_sizes[0]``, removing the padding the neck may have added).

        Returns:
            Tensor: (B, C, H_s0, W_s0) logits on the finest learned grid.
        """
        he, we = assignments[-1].shape[-2:]
        if tuple(logits.shape[-2:]) != (he // 2, we // 2):
            raise ValueError(
                'HCFCNHead: the coarse logits must be at twice the stride of the coarsest '
                "assignment level (stride 16 for the paper's levels (4, 8)): got logits of "
                f'size {tuple(logits.shape[-2:])}, expected {(he // 2, we // 2)} (the coarse '
                f'grid of the {he}x{we} coarsest assignment). A logits_head must predict at '
                'that stride, e.g. ASPPHead or PSPHead on a backbone at output stride 16; a '
                "head that upsamples inside (DeepLabV3+'s DepthwiseSeparableASPPHead predicts "
                'at stride 4) does not fit')
        # one node (the two finest upsamplings one launch on the GPU; without gradients nothing
        # but the result is written)
        logits = superpixel_upsample_hierarchy(logits, [a.to(logits.dtype) for a in assignments])
        h, w = fine_sizes[0]
        return logits[..., :h, :w]

    def forward(self, inputs: AssignedFeatures) -> Tensor:
        """Args:
            inputs (AssignedFeatures): the neck's output.

        Returns:
            Tensor: (B, out_channels, H/4, W/4) logits (stride ``inputs.levels[0]``).
        """
        return self.upsample_logits(
            self.coarse_logits(inputs), inputs.assignments, inputs.fine_sizes)

    def loss(self, inputs: AssignedFeatures, batch_data_samples: SampleList,
             train_cfg: dict) -> dict:
        """Forward + losses; the assignments go to :meth:`loss_by_feat` for L_SLIC."""
        seg_logits = self.forward(inputs)
        return self.loss_by_feat(seg_logits, batch_data_samples, inputs)

    def loss_by_feat(self,
                     seg_logits: Tensor,
                     batch_data_samples: SampleList,
                     inputs: Optional[AssignedFeatures] = None) -> dict:
        """CE (``loss_decode``) + lambda * L_SLIC.

        Args:
            seg_logits (Tensor): (B, C, H/4, W/4) from :meth:`forward`.
            batch_data_samples (list[SegDataSample]): with ``gt_sem_seg`` (if supervised) and
                ``slic_image`` (if the SLIC loss is on).
            inputs (AssignedFeatures, optional): the neck output (needed for L_SLIC).

        Returns:
            dict[str, Tensor]: ``loss_ce``/``acc_seg`` (supervised) and ``loss_slic``
            (lambda > 0).
        """
        losses = super().loss_by_feat(seg_logits, batch_data_samples) if self.supervised \
            else dict()
        if self.with_slic_loss:
            if inputs is None:
                raise ValueError('HCFCNHead.loss_by_feat needs the neck output for L_SLIC')
            inputs = self._check_inputs(inputs)
            images, valid = self._stack_slic_images(batch_data_samples)
            losses[self.loss_slic.loss_name] = self.loss_slic(
                images,
                list(inputs.assignments),
                inputs.fine_sizes[0],
                valid,
                stride=inputs.levels[0])
        return losses

    @staticmethod
    def _stack_slic_images(batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """(B, 3, H, W) RGB images in [0, 255] and (B, H, W) masks of non-padding pixels."""
        if not all('slic_image' in s for s in batch_data_samples):
            raise ValueError(
                'HCFCNHead: the SLIC loss needs `slic_image` in every data sample; use '
                "data_preprocessor=dict(type='SpixSegDataPreProcessor', ...) or set "
                'loss_slic.loss_weight=0')
        images = torch.stack([s.slic_image.data for s in batch_data_samples])
        valid = images.new_ones(images.shape[0], *images.shape[-2:], dtype=torch.bool)
        for i, s in enumerate(batch_data_samples):
            left, right, top, bottom = s.metainfo.get('padding_size', [0, 0, 0, 0])
            h, w = valid.shape[-2:]
            valid[i, :top] = False
            valid[i, h - bottom:] = False
            valid[i, :, :left] = False
            valid[i, :, w - right:] = False
        return images, valid

    def predict_superpixels(self, inputs: AssignedFeatures, size: Sequence[int]) -> Tensor:
        """Hard superpixels, nearest-resized to ``size``.

        Args:
            inputs (AssignedFeatures): the neck output.
            size (Sequence[int]): (H, W) of the result: the size of the logits :meth:`predict`
                returned for the same inputs (what mmseg's ``predict_by_feat`` resized them to:
                the padded input, or the window in slide inference), so the superpixels have the
                logits' geometry.

        Returns:
            Tensor: (B, H, W) int64 ids of the coarsest seeds (row-major on the stride
            ``2 * levels[-1]`` grid), nearest-resized from the finest learned grid.
        """
        inputs = self._check_inputs(inputs)
        # crop (the neck's padding) and nearest resize in the same op (one launch on the GPU);
        # the sizes stay as given (no int(): a traced export keeps them dynamic)
        return hard_superpixels(
            list(inputs.assignments), size=(size[0], size[1]), crop=inputs.fine_sizes[0])
