# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""ResNet34 without conv5_x (output stride 16) with DCNv2 stride-2 convolutions (Suzuki 2021)."""
from typing import Sequence, Tuple

import torch.nn as nn
from mmseg.models.backbones import ResNet
from mmseg.registry import MODELS
from torch import Tensor

from ..utils import BackboneFeatures, ZeroInitModulatedDeformConv2d


def _to_dcn(conv: nn.Conv2d, modulation: str = '2sigmoid') -> ZeroInitModulatedDeformConv2d:
    """A DCNv2 layer with ``conv``'s geometry (and weights), starting as exactly ``conv`` (with
    ``modulation='2sigmoid'``)."""
    dcn = ZeroInitModulatedDeformConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        modulation=modulation)
    dcn.weight.data.copy_(conv.weight.data)
    if conv.bias is not None:
        dcn.bias.data.copy_(conv.bias.data)
    return dcn


@MODELS.register_module()
class DCNResNet(ResNet):
    """mmseg ResNet (default: ResNet34, stages conv2_x..conv4_x, OS16) with DCNv2 downsampling.

    In every stage whose first block downsamples (stride 2), the block's strided 3x3 convolution
    and its 1x1 stride-2 shortcut convolution are replaced by
    :class:`ZeroInitModulatedDeformConv2d` (mmcv's DCNv2, offset/mask conv zero-initialised so it
    starts as the plain convolution).

    Stem: the 7x7 stride-2 stem convolution and the stride-2 max-pool are kept as in ResNet. The
    assignments of those two downsamplings, A(1) and A(2), are not learned in HCFCN (only A(4) and
    A(8) are), so no feature pair is compared there; a deformable 7x7 conv on the 3-channel RGB
    input would only add offsets that no assignment uses, and the max-pool is not a convolution.
    Keeping them also keeps the ImageNet stem exactly.

    ``forward`` returns the tuple of stage outputs selected by ``out_indices``, as every mmseg
    backbone (what stock heads index with ``in_index``: the FCN-16 baseline's ``FCNHead``).
    :meth:`forward_pairs` returns them as :class:`BackboneFeatures` with ``pairs[s] = (x_s,
    z_2s)`` for every stride-2 stage: ``x_s`` is the feature entering the stage (stride ``s``)
    and ``z_2s`` the output of its first (downsampling) block, the pair Suzuki's assignment
    compares; ``SpixEncoderDecoder`` calls it to feed an :class:`AssignmentNeck`.

    Pretrained weights: ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')``
    loads torchvision's ImageNet ResNet34 (mmseg's ResNet uses torchvision's parameter names; the
    DCN layers keep ``weight`` so those load too; ``layer4.*``/``fc.*`` are unused and
    ``*.conv_offset.*`` stay zero). For an mmpretrain checkpoint add ``prefix='backbone.'``.

    Args:
        depth (int): ResNet depth. Default: 34.
        num_stages (int): residual stages kept. Default: 3 (conv5_x removed, output stride 16).
        strides (Sequence[int]): stride of each stage's first block. Default: (1, 2, 2).
        dilations (Sequence[int]): dilation of each stage. Default: (1, 1, 1).
        out_indices (Sequence[int]): stages whose outputs are returned. Default: (0, 1, 2).
        dcn_downsample (bool): replace the stride-2 convolutions by DCNv2. Default: True.
        dcn_shortcut_kernel_size (int): kernel of the DCN shortcut: 1 (default: the 1x1
            shortcut made deformable, its weights kept) or 3 (the thesis's own code: a new 3x3
            stride-2 DCNv2, padding 1).
        dcn_shortcut_bias (bool): whether a new 3x3 shortcut has a bias (the original's: True).
            Default: False.
        dcn_modulation (str): '2sigmoid' (default: a fresh DCN layer is exactly the plain
            convolution) or 'sigmoid' (the original's: masks 0.5 at initialisation).
        **kwargs: any other argument of mmseg's ``ResNet`` (norm_cfg, base_channels, ...).
    """

    def __init__(self,
                 depth: int = 34,
                 num_stages: int = 3,
                 strides: Sequence[int] = (1, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2),
                 dcn_downsample: bool = True,
                 dcn_shortcut_kernel_size: int = 1,
                 dcn_shortcut_bias: bool = False,
                 dcn_modulation: str = '2sigmoid',
                 **kwargs) -> None:
        if dcn_shortcut_kernel_size not in (1, 3):
            raise ValueError(f'DCNResNet: dcn_shortcut_kernel_size must be 1 or 3, got '
                             f'{dcn_shortcut_kernel_size!r}')
        if dcn_shortcut_bias and dcn_shortcut_kernel_size == 1:
            raise ValueError('DCNResNet: dcn_shortcut_bias applies to the new 3x3 shortcut '
                             '(dcn_shortcut_kernel_size=3) only')
        super().__init__(
            depth=depth,
            num_stages=num_stages,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            **kwargs)
        self.dcn_downsample = dcn_downsample
        self.dcn_shortcut_kernel_size = dcn_shortcut_kernel_size
        self.dcn_shortcut_bias = dcn_shortcut_bias
        self.dcn_modulation = dcn_modulation
        if dcn_downsample:
            for i, layer_name in enumerate(self.res_layers):
                if self.strides[i] == 2:
                    self._replace_strided_convs(getattr(self, layer_name)[0])

    def _replace_strided_convs(self, block: nn.Module) -> None:
        """Swap every stride-2 ``nn.Conv2d`` of ``block`` (the 3x3 of the residual branch:
        conv1 in BasicBlock, conv2 in a pytorch-style Bottleneck; the 1x1 shortcut conv) for
        DCNv2."""
        for name in ('conv1', 'conv2'):
            conv = getattr(block, name, None)
            if isinstance(conv, nn.Conv2d) and conv.stride == (2, 2):
                setattr(block, name, _to_dcn(conv, self.dcn_modulation))
        if block.downsample is not None:
            for j, m in enumerate(block.downsample):
                if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                    if self.dcn_shortcut_kernel_size == 3:
                        block.downsample[j] = ZeroInitModulatedDeformConv2d(
                            m.in_channels,
                            m.out_channels,
                            3,
                            stride=2,
                            padding=1,
                            bias=self.dcn_shortcut_bias,
                            modulation=self.dcn_modulation)
                    else:
                        block.downsample[j] = _to_dcn(m, self.dcn_modulation)

    def init_weights(self) -> None:
        """Initialise as mmseg's ResNet, then re-zero the DCN offset/mask convolutions.

        mmseg's default ``Kaiming(layer='Conv2d')`` init also reaches the offset convs (they are
        ``nn.Conv2d``); they must stay zero so the network starts as the plain ResNet.
        """
        super().init_weights()
        for m in self.modules():
            if isinstance(m, ZeroInitModulatedDeformConv2d):
                nn.init.zeros_(m.conv_offset.weight)
                nn.init.zeros_(m.conv_offset.bias)

    def forward_pairs(self, x: Tensor) -> BackboneFeatures:
        """Args:
            x (Tensor): (B, 3, H, W) normalised images.

        Returns:
            BackboneFeatures: ``stages`` = the outputs for ``out_indices`` (stride 4, 8, 16 by
            default) and ``pairs`` = {4: (x4, z8), 8: (x8, z16)} by default.
        """
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.conv1(x)
            x = self.norm1(x)
            x = self.relu(x)
        x = self.maxpool(x)
        stride = 4
        outs, pairs = [], {}
        for i, layer_name in enumerate(self.res_layers):
            res_layer = getattr(self, layer_name)
            if self.strides[i] == 2:
                fine = x
                x = res_layer[0](x)
                pairs[stride] = (fine, x)
                stride *= 2
                for block in list(res_layer)[1:]:
                    x = block(x)
            else:
                x = res_layer(x)
            if i in self.out_indices:
                outs.append(x)
        return BackboneFeatures(outs, pairs)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): (B, 3, H, W) normalised images.

        Returns:
            tuple[Tensor]: the stage outputs for ``out_indices`` (those of
            :meth:`forward_pairs`).
        """
        return self.forward_pairs(x).stages
