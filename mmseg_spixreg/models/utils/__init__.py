# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .deform_conv import ZeroInitModulatedDeformConv2d
from .spix_features import AssignedFeatures, BackboneFeatures
from .superpixel_assignment import SuperpixelAssignment

__all__ = [
    'AssignedFeatures', 'BackboneFeatures', 'SuperpixelAssignment', 'ZeroInitModulatedDeformConv2d'
]
