# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Deployment: export segmentors to ONNX (standard operators, DCNv2 as ``DeformConv``) and check
the exported models in onnxruntime. Not imported by ``mmseg_spixreg`` itself (it needs
requirements/deploy.txt for the export); ``tools/deployment/pytorch2onnx.py`` is the command.

The export traces the real segmentor: while it runs, the superpixel ops of
:mod:`mmseg_spixreg.ops` run their torch kernels as plain tensor ops and the DCNv2 layers call
:func:`.deform_conv_export.modulated_deform_conv2d_traceable` (both check
:func:`mmseg_spixreg.ops.backends.exporting` themselves).

* :mod:`.checks`: what a single graph cannot hold (TTA, slide inference, mmcv C++ ops other
  than DCNv2, adaptive pooling to a grid larger than 1x1 with dynamic sizes);
* :mod:`.deform_conv_export`: mmcv's DCNv2 as a torch custom op and its ONNX translation;
* :mod:`.export_wrapper`: :class:`ExportWrapper`, image -> the segmentor's ``encode_decode``
  -> logits (+ superpixels);
* :mod:`.onnx_export`: :func:`export_onnx`, :func:`verify_onnx`.
"""
from .checks import check_dynamic_exportable, check_exportable, check_traceable_modules
from .export_wrapper import ExportWrapper, export_inputs, network_channel_order
from .onnx_export import (LOGIT_TOLERANCE, MIN_ARGMAX_AGREEMENT, compare_predictions, export_onnx,
                          onnxruntime_session, pytorch_predictions, verify_onnx)

__all__ = [
    'ExportWrapper', 'LOGIT_TOLERANCE', 'MIN_ARGMAX_AGREEMENT', 'check_dynamic_exportable',
    'check_exportable', 'check_traceable_modules', 'compare_predictions', 'export_inputs',
    'export_onnx', 'network_channel_order', 'onnxruntime_session', 'pytorch_predictions',
    'verify_onnx'
]
