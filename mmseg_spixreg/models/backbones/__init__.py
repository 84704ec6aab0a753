# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .dcn_resnet import DCNResNet

__all__ = ['DCNResNet']
