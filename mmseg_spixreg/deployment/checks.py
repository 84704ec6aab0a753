# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""What a single exported graph cannot hold: each check raises a ValueError naming the option
or the layer."""
import torch.nn as nn
from mmcv.ops import ModulatedDeformConv2d
from mmengine.model import BaseTTAModel


def check_exportable(model: nn.Module) -> None:
    """Raise ValueError, naming the option, for inference settings a single graph cannot hold,
    and for layers no exporter can trace (:func:`check_traceable_modules`).

    Args:
        model (nn.Module): an mmseg segmentor (``init_model``).
    """
    if isinstance(model, BaseTTAModel):
        raise ValueError(
            'test-time augmentation (tools/test.py --tta, the config\'s tta_model) cannot be '
            'exported: the ONNX model is one whole-image forward pass; export the segmentor '
            'itself and average flipped / rescaled runs of it yourself')
    if not hasattr(model, 'encode_decode') or not hasattr(model, 'data_preprocessor'):
        raise ValueError(f'{type(model).__name__} is not an mmseg EncoderDecoder segmentor '
                         '(no encode_decode / data_preprocessor); only those can be exported')
    mode = (getattr(model, 'test_cfg', None) or {}).get('mode', 'whole')
    if mode != 'whole':
        raise ValueError(
            f"model.test_cfg.mode='{mode}' cannot be exported: sliding-window inference "
            'assembles windows in Python; export whole-image inference with '
            "--cfg-options model.test_cfg.mode=whole (and run windows yourself if needed)")
    check_traceable_modules(model)


def check_traceable_modules(model: nn.Module) -> None:
    """Raise ValueError naming a module of ``model`` that cannot be exported: an mmcv C++ op
    (an autograd function around a C++ kernel, opaque to exporters). The DCNv2 layer of this
    package, :class:`mmseg_spixreg.models.utils.ZeroInitModulatedDeformConv2d`, exports (as
    ONNX ``DeformConv``: :mod:`.deform_conv_export`); mmcv's own DCNv2 classes do not."""
    for name, module in model.named_modules():
        cls = type(module)
        if cls.__module__.startswith('mmcv.ops'):
            hint = ('; mmseg_spixreg\'s DCNv2 layer, ZeroInitModulatedDeformConv2d, exports (as '
                    'ONNX DeformConv)' if isinstance(module, ModulatedDeformConv2d) else '')
            raise ValueError(f'{name} ({cls.__module__}.{cls.__name__}) is an mmcv C++ op that '
                             f'cannot be exported{hint}')


_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                   nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def check_dynamic_exportable(model: nn.Module) -> None:
    """Raise ValueError, naming the layer, if ``model`` cannot be exported with dynamic H, W.

    An adaptive pooling layer to a grid larger than 1x1 (PSPNet's pyramid pooling: output sizes
    2, 3, 6) has bins whose bounds depend on the input size; the traced graph holds the bins of
    the example shape as constants, so a dynamic model would be wrong (or fail) at any other
    size. Global pooling (output size 1, e.g. DeepLabV3's image pool) is size-independent.

    Args:
        model (nn.Module): an mmseg segmentor (``init_model``).
    """
    for name, module in model.named_modules():
        if not isinstance(module, _ADAPTIVE_POOLS):
            continue
        size = module.output_size
        sizes = size if isinstance(size, (tuple, list)) else (size, )
        if all(s is None or s == 1 for s in sizes):
            continue
        raise ValueError(
            f'--dynamic: layer {name!r} ({type(module).__name__}, output size {size}) pools '
            'into a fixed grid whose bins depend on the input size (e.g. PSPNet\'s pyramid '
            'pooling); the traced graph would keep the bins of the example --shape and be '
            'wrong at any other size. Export a static model at the input size you run '
            '(--shape H W without --dynamic), one per size')
