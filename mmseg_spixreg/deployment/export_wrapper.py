# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The module an export traces: a raw image in, the segmentor's own ``encode_decode`` on it,
full-resolution logits (and hard superpixels) out."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models import SpixEncoderDecoder
from .checks import check_exportable


def network_channel_order(data_preprocessor: nn.Module) -> str:
    """'RGB' or 'BGR': the channel order of the images the network sees (after the
    preprocessor's ``bgr_to_rgb`` / ``rgb_to_bgr``), i.e. what the exported model takes."""
    loaded = getattr(data_preprocessor, 'input_channel_order', 'bgr').upper()
    if getattr(data_preprocessor, 'channel_conversion', False):
        return loaded[::-1]
    return loaded


class ExportWrapper(nn.Module):
    """What ``model.test_step`` computes for one batch of same-sized images, as a module that
    ``torch.export`` traces.

    It does only what the model's data preprocessor would do to a loaded image (normalisation,
    test-time padding: ``test_cfg.size_divisor`` / ``size``, ``pad_val``, bottom/right), then
    calls the segmentor's own ``encode_decode`` (backbone, neck, ``decode_head.predict`` and,
    for HCFCN models, the hard superpixels) and crops the result back to the image size, as
    the postprocessing does. The superpixel ops and the DCNv2 layers pick their traceable
    path themselves while they are exported (:func:`mmseg_spixreg.ops.backends.exporting`);
    in eager mode this module runs exactly the model's kernels.

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
        self.with_superpixels = isinstance(model, SpixEncoderDecoder) and model.with_superpixels
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
            models with superpixels, hard superpixel ids (B, H, W) int64 (as
            ``pred_superpixels``).
        """
        h, w = image.shape[-2:]
        x = image.float()
        if self.normalize:
            x = (x - self.mean) / self.std
        ph, pw = self._padding(h, w)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=self.pad_val)
        # a torch.Size img_shape: predict_by_feat resizes the logits to the padded input
        out = self.segmentor.encode_decode(x, [dict(img_shape=x.shape[2:])])
        if isinstance(out, Tensor):  # mmseg's EncoderDecoder
            return out[:, :, :h, :w]
        logits = out.seg_logits[:, :, :h, :w]
        if not self.with_superpixels:
            return logits
        return logits, out.superpixels[:, :h, :w]


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
