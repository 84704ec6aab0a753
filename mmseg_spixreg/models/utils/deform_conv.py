# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""DCNv2 convolution that starts as the plain convolution it replaces."""
import torch
import torch.nn as nn
from mmcv.ops import ModulatedDeformConv2d, modulated_deform_conv2d
from torch import Tensor

from ...ops.backends import exporting


class ZeroInitModulatedDeformConv2d(ModulatedDeformConv2d):
    """mmcv's modulated deformable convolution (DCNv2) with a zero-initialised offset/mask conv.

    The offset/mask branch is a plain ``nn.Conv2d`` (same kernel, stride, padding as the main
    convolution) predicting 2*k*k offsets and k*k modulation scalars per deformable group. It is
    zero-initialised, and the modulation is ``2 * sigmoid(m)`` (range (0, 2)) instead of DCNv2's
    ``sigmoid(m)``, so that at initialisation offsets are 0 and masks are exactly 1: the layer
    computes *exactly* the convolution it replaces, and ImageNet weights loaded into ``weight``
    keep their meaning (BN statistics included). With ``sigmoid`` the layer would start as half
    the plain convolution.

    The main ``weight`` (and ``bias``) have the names of ``nn.Conv2d``'s, so torchvision / mmseg
    checkpoints load into it unchanged; ``conv_offset.*`` is reported missing and stays zero.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int | tuple[int, int]): kernel size.
        stride, padding, dilation, groups, deform_groups: as ``ModulatedDeformConv2d``.
        bias (bool): whether the main convolution has a bias. Default: False (ResNet).
        modulation (str): ``'2sigmoid'`` (default: masks exactly 1 at initialisation, the
            layer starts as the plain convolution) or ``'sigmoid'`` (DCNv2's and the thesis's
            own code: masks 0.5 at initialisation).
    """

    MODULATIONS = {'2sigmoid': 2.0, 'sigmoid': 1.0}

    def __init__(self, *args, bias: bool = False, modulation: str = '2sigmoid', **kwargs) -> None:
        if modulation not in self.MODULATIONS:
            raise ValueError(f'ZeroInitModulatedDeformConv2d: modulation must be one of '
                             f'{tuple(self.MODULATIONS)}, got {modulation!r}')
        super().__init__(*args, bias=bias, **kwargs)
        self.modulation = modulation
        self.conv_offset = nn.Conv2d(
            self.in_channels,
            self.deform_groups * 3 * self.kernel_size[0] * self.kernel_size[1],
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming (fan_out, as mmseg's ResNet init) for the main weight, zeros for offsets."""
        if hasattr(self, 'conv_offset'):
            nn.init.kaiming_normal_(self.weight, mode='fan_out', nonlinearity='relu')
            if self.bias is not None:
                nn.init.zeros_(self.bias)
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)
        else:  # called by the parent constructor before conv_offset exists
            super().init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): (B, Cin, H, W).

        Returns:
            Tensor: (B, Cout, H', W') with the usual convolution output size. Under autocast
            (``--amp``) the layer runs in float32 (and returns float32): mmcv's CPU kernel has
            no bfloat16 version, and sub-pixel offsets need more precision than 16-bit floats.
            While the layer is exported it runs mmcv's kernel as the torch custom op of
            :mod:`mmseg_spixreg.deployment.deform_conv_export` (ONNX ``DeformConv``).
        """
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(device_type=x.device.type, enabled=False):
                return self._forward(x if x.dtype == torch.float64 else x.float())
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        out = self.conv_offset(x)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        mask = self.MODULATIONS[self.modulation] * torch.sigmoid(mask)
        if exporting():  # mmcv's autograd function is opaque to exporters: its custom op
            from ...deployment.deform_conv_export import modulated_deform_conv2d_traceable
            return modulated_deform_conv2d_traceable(x, offset, mask, self.weight, self.bias,
                                                     self.stride, self.padding, self.dilation,
                                                     self.groups, self.deform_groups)
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride,
                                       self.padding, self.dilation, self.groups, self.deform_groups)
