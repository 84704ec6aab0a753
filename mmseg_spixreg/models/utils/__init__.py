from .deform_conv import ZeroInitModulatedDeformConv2d
from .spix_features import AssignedFeatures, BackboneFeatures

__all__ = ['AssignedFeatures', 'BackboneFeatures', 'ZeroInitModulatedDeformConv2d']
