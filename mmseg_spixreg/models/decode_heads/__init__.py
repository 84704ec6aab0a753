# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .hcfcn_head import HCFCNHead

__all__ = ['HCFCNHead']
