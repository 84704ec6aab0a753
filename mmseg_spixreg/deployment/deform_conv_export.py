# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""mmcv's modulated deformable convolution (DCNv2) as a torch custom op that exports to ONNX
``DeformConv`` (opset >= 19).

mmcv's ``modulated_deform_conv2d`` is an autograd function around a C++ extension: opaque to
``torch.export``. :func:`modulated_deform_conv2d_op` wraps it as a ``torch.library`` custom op
(``torch.ops.mmseg_spixreg.modulated_deform_conv2d``, eager: mmcv's kernel, so PyTorch runs
exactly mmcv's numbers) with a shape function for tracing, and :func:`deform_conv_onnx` is its
ONNX translation for ``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``.

Offset layout: mmcv reads channel ``2 * (g * kh * kw + k)`` of the offset as the row (y)
displacement and ``2 * (...) + 1`` as the column (x) displacement of kernel tap ``k`` of offset
group ``g``; ONNX ``DeformConv`` reads its ``(N, offset_group * kh * kw * 2, oH, oW)`` offset
the same way (``(h, w)`` pairs per tap), so the offset passes unchanged;
``tests/test_deployment/test_deform_conv_export.py`` checks it numerically with asymmetric
offsets.
"""
from typing import List, Optional

import torch
from mmcv.ops import modulated_deform_conv2d
from torch import Tensor
from torch.nn.modules.utils import _pair


@torch.library.custom_op('mmseg_spixreg::modulated_deform_conv2d', mutates_args=())
def modulated_deform_conv2d_op(input: Tensor, offset: Tensor, mask: Tensor, weight: Tensor,
                               bias: Optional[Tensor], stride: List[int], padding: List[int],
                               dilation: List[int], groups: int, deform_groups: int) -> Tensor:
    """mmcv's ``modulated_deform_conv2d`` as a custom op (arguments in mmcv's order).

    Args:
        input (Tensor): (N, Cin, H, W).
        offset (Tensor): (N, 2 * deform_groups * kh * kw, oH, oW), (dy, dx) per kernel tap.
        mask (Tensor): (N, deform_groups * kh * kw, oH, oW) modulation.
        weight (Tensor): (Cout, Cin / groups, kh, kw).
        bias (Tensor, optional): (Cout, ).
        stride, padding, dilation (list[int]): (h, w) each.
        groups (int): convolution groups.
        deform_groups (int): offset groups.

    Returns:
        Tensor: (N, Cout, oH, oW).
    """
    return modulated_deform_conv2d(input, offset, mask, weight, bias, tuple(stride), tuple(padding),
                                   tuple(dilation), groups, deform_groups)


@modulated_deform_conv2d_op.register_fake
def _modulated_deform_conv2d_shape(input, offset, mask, weight, bias, stride, padding, dilation,
                                   groups, deform_groups):
    # the offset is predicted on the output grid
    return input.new_empty(input.shape[0], weight.shape[0], offset.shape[2], offset.shape[3])


def deform_conv_onnx(input, offset, mask, weight, bias, stride, padding, dilation, groups,
                     deform_groups):
    """ONNX translation of :func:`modulated_deform_conv2d_op`: one ``DeformConv`` node (opset
    19; inputs X, W, offset, B, mask, attributes as the op's arguments; ``kernel_shape`` is
    inferred from W)."""
    from onnxscript import opset19 as op
    return op.DeformConv(
        input,
        weight,
        offset,
        bias,
        mask,
        dilations=[int(d) for d in dilation],
        group=int(groups),
        offset_group=int(deform_groups),
        pads=[int(padding[0]), int(padding[1]),
              int(padding[0]), int(padding[1])],
        strides=[int(s) for s in stride])


def modulated_deform_conv2d_traceable(input: Tensor,
                                      offset: Tensor,
                                      mask: Tensor,
                                      weight: Tensor,
                                      bias: Optional[Tensor] = None,
                                      stride=1,
                                      padding=0,
                                      dilation=1,
                                      groups: int = 1,
                                      deform_groups: int = 1) -> Tensor:
    """mmcv's ``modulated_deform_conv2d`` (same signature; int or pair geometry) through
    :func:`modulated_deform_conv2d_op`: what
    :class:`mmseg_spixreg.models.utils.ZeroInitModulatedDeformConv2d` calls while it is
    exported."""
    return modulated_deform_conv2d_op(input, offset, mask, weight, bias, list(_pair(stride)),
                                      list(_pair(padding)), list(_pair(dilation)), int(groups),
                                      int(deform_groups))
