from .hcfcn_head import HCFCNHead

__all__ = ['HCFCNHead']
