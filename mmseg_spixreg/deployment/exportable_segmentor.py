# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""A segmentor's whole-image inference as one traceable module: image in, full-resolution
logits (and hard superpixels) out."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from torch import Tensor

from ..ops import hard_superpixels
from .rewrites import check_traceable_modules


def check_exportable(model: nn.Module) -> None:
    """Raise ValueError, naming the option, for inference settings a single graph cannot hold.

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


def network_channel_order(data_preprocessor: nn.Module) -> str:
    """'RGB' or 'BGR': the channel order of the images the network sees (after the
    preprocessor's ``bgr_to_rgb`` / ``rgb_to_bgr``), i.e. what the exported model takes."""
    loaded = getattr(data_preprocessor, 'input_channel_order', 'bgr').upper()
    if getattr(data_preprocessor, 'channel_conversion', False):
        return loaded[::-1]
    return loaded


class ExportableSegmentor(nn.Module):
    """What ``model.test_step`` computes for one batch of same-sized images, as a module that
    ``torch.export`` traces: the data preprocessor's normalisation and test-time padding
    (``test_cfg.size_divisor`` / ``size``, ``pad_val``, bottom/right), the segmentor's
    ``encode_decode`` (backbone, neck, ``decode_head.predict``; for HCFCN models the hard
    superpixels of the neck's assignments, as ``HCFCNHead.predict_superpixels``) and the
    postprocessing crop back to the image size. In eager mode it runs
    the model's own kernels; :func:`mmseg_spixreg.deployment.export_onnx` traces it inside
    :func:`mmseg_spixreg.deployment.export_rewrites` (traceable superpixel ops, DCNv2 as a
    custom op).

    The image is *not* resized (a test pipeline's ``Resize`` is left to the caller, as for
    ``model.test_step`` on already loaded inputs) nor channel-swapped: it must be in the channel
    order the network sees (:func:`network_channel_order`, RGB for every config here).

    Args:
        model (nn.Module): an mmseg ``EncoderDecoder`` (``SpixEncoderDecoder`` for HCFCN models,
            which also output hard superpixels), in eval mode; wrapped, not changed.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_exportable(model)
        pre = model.data_preprocessor
        self.segmentor = model
        self.with_superpixels = bool(getattr(model, 'with_superpixels', False))
        self.normalize = bool(getattr(pre, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', pre.mean.detach().clone().float().view(1, -1, 1, 1))
            self.register_buffer('std', pre.std.detach().clone().float().view(1, -1, 1, 1))
        test_cfg = getattr(pre, 'test_cfg', None) or {}
        self.pad_size: Optional[Tuple[int, int]] = tuple(test_cfg['size']) \
            if test_cfg.get('size') else None
        self.size_divisor: Optional[int] = test_cfg.get('size_divisor')
        self.pad_val = float(getattr(pre, 'pad_val', 0))
        self.channel_order = network_channel_order(pre)
        self.num_classes = int(model.decode_head.out_channels)
        if self.with_superpixels:
            top = 2 * int(model.neck.levels[-1])
            pads_to_grid = (self.pad_size is not None and not any(v % top for v in self.pad_size)) \
                or (self.pad_size is None and bool(self.size_divisor)
                    and self.size_divisor % top == 0)
            if not pads_to_grid:
                raise ValueError(
                    f'exporting {type(model).__name__} needs test-time padding to a multiple of '
                    f'{top} (the coarsest superpixel grid): set model.data_preprocessor.test_cfg='
                    f'dict(size_divisor={top}) (--cfg-options)')

    def _padding(self, h, w):
        if self.pad_size is not None:
            return max(self.pad_size[0] - h, 0), max(self.pad_size[1] - w, 0)
        if self.size_divisor and self.size_divisor > 1:
            d = int(self.size_divisor)
            return (d - h % d) % d, (d - w % d) % d
        return 0, 0

    def forward(self, image: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Args:
            image (Tensor): (B, 3, H, W) float32, values in [0, 255], channel order
                :attr:`channel_order`.

        Returns:
            Tensor | tuple[Tensor, Tensor]: logits (B, num_classes, H, W) float32 and, for
            models with superpixels, hard superpixel ids (B, H, W) int64 (flat index of the
            stride-16 seed, as ``pred_superpixels``).
        """
        h, w = image.shape[-2:]
        x = image.float()
        if self.normalize:
            x = (x - self.mean) / self.std
        ph, pw = self._padding(h, w)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=self.pad_val)
        # mmseg's EncoderDecoder.encode_decode; predict_by_feat resizes to img_shape (torch.Size)
        feats = self.segmentor.extract_feat(x)
        logits = self.segmentor.decode_head.predict(feats, [dict(img_shape=x.shape[2:])],
                                                    self.segmentor.test_cfg)[:, :, :h, :w]
        if not self.with_superpixels:
            return logits
        # HCFCNHead.predict_superpixels: the finest level's hard ids, nearest-resized to the
        # padded input, which is exactly `stride` times the finest grid (checked in __init__);
        # repeated here instead of resized so that the size stays symbolic in a dynamic export
        spix = hard_superpixels(feats.assignments)
        s = feats.levels[0]
        b, hs, ws = spix.shape
        spix = spix[:, :, None, :, None].expand(b, hs, s, ws, s).reshape(b, hs * s, ws * s)
        return logits, spix[:, :h, :w]


def export_inputs(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """A deterministic example image batch (B, 3, H, W) in [0, 255] for tracing: smooth colour
    gradients plus noise."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, 1, width)
    base = torch.cat([
        ys.expand(1, 1, height, width),
        xs.expand(1, 1, height, width), (ys * xs).expand(1, 1, height, width)
    ],
                     dim=1) * 200
    noise = torch.rand(batch, 3, height, width, generator=g) * 55
    return (base + noise).clamp(0, 255)
