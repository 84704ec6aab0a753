# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Deployment: export segmentors to ONNX (standard operators, DCNv2 as ``DeformConv``) and check
the exported models in onnxruntime. Not imported by ``mmseg_spixreg`` itself (it needs
requirements/deploy.txt for the export); ``tools/deployment/pytorch2onnx.py`` is the command.

* :mod:`.superpixel_export`: traceable formulations of the superpixel ops (export only);
* :mod:`.deform_conv_export`: mmcv's DCNv2 as a torch custom op and its ONNX translation;
* :mod:`.rewrites`: :func:`export_rewrites`, the traceable functions in place of the opaque
  kernels while a model is exported;
* :mod:`.exportable_segmentor`: image -> logits (+ superpixels) as one traceable module;
* :mod:`.onnx_export`: :func:`export_onnx`, :func:`verify_onnx`.
"""
from .exportable_segmentor import (ExportableSegmentor, check_dynamic_exportable, check_exportable,
                                   network_channel_order)
from .onnx_export import (LOGIT_TOLERANCE, MIN_ARGMAX_AGREEMENT, compare_predictions, export_onnx,
                          onnxruntime_session, pytorch_predictions, verify_onnx)
from .rewrites import check_traceable_modules, export_rewrites
from .superpixel_export import (hard_superpixels_traceable, neighbour_correlation_traceable,
                                seed_softmax_traceable, superpixel_upsample_traceable)

__all__ = [
    'ExportableSegmentor', 'LOGIT_TOLERANCE', 'MIN_ARGMAX_AGREEMENT', 'check_dynamic_exportable',
    'check_exportable', 'check_traceable_modules', 'compare_predictions', 'export_onnx',
    'export_rewrites', 'hard_superpixels_traceable', 'neighbour_correlation_traceable',
    'network_channel_order', 'onnxruntime_session', 'pytorch_predictions', 'seed_softmax_traceable',
    'superpixel_upsample_traceable', 'verify_onnx'
]
