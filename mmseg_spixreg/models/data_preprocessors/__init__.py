# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .spix_data_preprocessor import SpixSegDataPreProcessor

__all__ = ['SpixSegDataPreProcessor']
