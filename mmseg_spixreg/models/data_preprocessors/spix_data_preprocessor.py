# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SegDataPreProcessor that also keeps the un-normalised RGB image for the SLIC loss."""
from typing import Any, Dict

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS


def check_finite_images(data: dict) -> None:
    """Raise if a floating-point input image has a NaN or infinite value.

    Args:
        data (dict): ``inputs`` (list of (C, H_i, W_i) tensors, or a (B, C, H, W) tensor) and
            optionally ``data_samples`` (their ``img_path`` names the image).

    Raises:
        ValueError: Naming the image and the number of non-finite values.
    """
    samples = data.get('data_samples') or []
    for i, img in enumerate(data['inputs']):
        if not (torch.is_tensor(img) and img.is_floating_point()):
            continue  # integer images (what mmcv's loaders give) cannot hold NaN / inf
        bad = int((~torch.isfinite(img)).sum())
        if bad:
            name = samples[i].metainfo.get('img_path') if i < len(samples) else None
            raise ValueError(
                f'input image {name or i} has {bad} NaN / infinite value(s) of '
                f'{img.numel()}: the prediction would be NaN logits (class 0 everywhere); fix '
                'or drop the image')


@MODELS.register_module()
class SpixSegDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` + ``slic_image`` in every training data sample.

    Everything mmseg's preprocessor does (channel conversion, normalisation, padding to ``size`` /
    ``size_divisor``, batch augments) is unchanged. In training, each data sample also gets
    ``slic_image = PixelData(data=FloatTensor (3, H, W))``: the *un-normalised* image in RGB order,
    values in [0, 255], padded to the batch geometry like ``inputs`` (same ``padding_size``; the
    padding replicates the border pixels instead of ``pad_val`` so it does not bias the colour
    means of superpixels at the border; the SLIC loss gives padding pixels zero weight anyway).
    So a config turns L_SLIC on with the head's ``loss_slic.loss_weight`` alone.

    Not stored at test time (the loss is not computed there), nor with ``store_slic_image=False``.
    Batch augments that change pixel values are not mirrored into ``slic_image``.

    A floating-point image with a NaN or infinite pixel is a ``ValueError`` naming the image
    (in training and at test time): one NaN pixel makes every logit of the image NaN through the
    convolutions, and the prediction silently becomes class 0 everywhere.

    Args:
        input_channel_order (str): channel order of the images the pipeline delivers: 'bgr'
            (mmcv's loaders, mmseg's default) or 'rgb'. Default: 'bgr'.
        store_slic_image (bool): store ``slic_image`` in training. Default: True.
        **kwargs: ``SegDataPreProcessor`` arguments (mean, std, bgr_to_rgb, size, ...).
    """

    def __init__(self,
                 input_channel_order: str = 'bgr',
                 store_slic_image: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if input_channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"input_channel_order must be 'bgr' or 'rgb', got "
                             f'{input_channel_order!r}')
        self.input_channel_order = input_channel_order
        self.store_slic_image = store_slic_image

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Args:
            data (dict): ``inputs`` (list of (3, H_i, W_i) images) and ``data_samples``.
            training (bool): training mode.

        Returns:
            dict: ``inputs`` (B, 3, H, W) normalised batch and ``data_samples`` (with
            ``slic_image`` in training).
        """
        check_finite_images(data)
        if not (training and self.store_slic_image):
            return super().forward(data, training)
        data = self.cast_data(data)
        rgb = []
        for img in data['inputs']:
            if img.dim() != 3 or img.shape[0] != 3:
                raise ValueError('SpixSegDataPreProcessor: slic_image needs 3-channel images, '
                                 f'got {tuple(img.shape)}')
            img = img.float()
            rgb.append(img[[2, 1, 0]] if self.input_channel_order == 'bgr' else img)
        out = super().forward(data, training)
        for sample, img in zip(out['data_samples'], rgb):
            left, right, top, bottom = sample.metainfo.get('padding_size', [0, 0, 0, 0])
            if left or right or top or bottom:
                img = F.pad(img[None], (left, right, top, bottom), mode='replicate')[0]
            sample.slic_image = PixelData(data=img)
        return out
