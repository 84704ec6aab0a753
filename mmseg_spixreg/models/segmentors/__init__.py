from .spix_encoder_decoder import SpixEncoderDecoder
from .spix_seg_tta import SpixSegTTAModel

__all__ = ['SpixEncoderDecoder', 'SpixSegTTAModel']
