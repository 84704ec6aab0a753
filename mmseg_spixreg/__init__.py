"""mmseg_spixreg: superpixel upsampling (HCFCN) and the SLIC regulariser as an mmseg plug-in.

Importing the package registers every module in mmseg's registries (models, metrics, data sets,
transforms, hooks), so a config only needs::

    custom_imports = dict(imports=['mmseg_spixreg'], allow_failed_imports=False)
"""
from .utils import register_trusted_local_checkpoint_loader
from .version import __version__

register_trusted_local_checkpoint_loader()

from . import datasets, engine, evaluation, models, ops, visualization  # noqa: E402,F401

__all__ = ['__version__']
