# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .slic_loss import SLICLoss, rgb_to_lab, slic_reconstruction_error

__all__ = ['SLICLoss', 'rgb_to_lab', 'slic_reconstruction_error']
