from .dcn_resnet import DCNResNet

__all__ = ['DCNResNet']
