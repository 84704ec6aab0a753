# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Helpers of the deployment tests."""
import os.path as osp

import torch
from mmseg.apis import init_model

from tests.utils import REPO_ROOT


def random_checkpoint(config, path):
    """Save a randomly initialised model of ``config`` as an mmengine checkpoint, with what a
    trained one has and a fresh one lacks: non-zero DCN offsets / masks (so the export of the
    DCNv2 offset layout matters), non-trivial BN statistics and logits of a trained model's
    magnitude (mmseg initialises the classifier with std 0.01: logits near 0 would make any
    absolute tolerance meaningless). (``init_model`` sets
    ``model.pretrained=None``: the DeepLabV3 config's ImageNet weights are not fetched.)"""
    torch.manual_seed(0)
    model = init_model(osp.join(REPO_ROOT, config), None, device='cpu')
    model.init_weights()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, 'conv_offset'):
                module.conv_offset.weight.copy_(
                    torch.randn(module.conv_offset.weight.shape, generator=g) * 2e-3)
                module.conv_offset.bias.copy_(
                    torch.rand(module.conv_offset.bias.shape, generator=g) * 2 - 1)
            if hasattr(module, 'conv_seg') and isinstance(module.conv_seg, torch.nn.Conv2d):
                fan_in = module.conv_seg.weight[0].numel()
                module.conv_seg.weight.copy_(
                    torch.randn(module.conv_seg.weight.shape, generator=g) * 12 / fan_in**0.5)
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
    classes = [f'class{i}' for i in range(model.decode_head.out_channels)]
    torch.save({
        'state_dict': model.state_dict(),
        'meta': {
            'dataset_meta': {
                'classes': classes
            }
        }
    }, path)
    return model
