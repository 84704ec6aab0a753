# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .spix_encoder_decoder import SpixEncoderDecoder
from .spix_seg_tta import SpixSegTTAModel

__all__ = ['SpixEncoderDecoder', 'SpixSegTTAModel']
