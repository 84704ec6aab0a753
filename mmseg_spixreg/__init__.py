# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""mmseg_spixreg: superpixel upsampling (HCFCN) and the SLIC regulariser as an mmseg plug-in.

Importing the package registers every module in mmseg's registries (models, metrics, data sets,
transforms, hooks), so a config only needs::

    custom_imports = dict(imports=['mmseg_spixreg'], allow_failed_imports=False)
"""
from .utils import register_safe_checkpoint_loaders
from .version import __version__

# every mmengine checkpoint loader unpickles weights-only with an allow-list
# (docs/design.md "Reliability")
register_safe_checkpoint_loaders()

from . import datasets, engine, evaluation, models, ops, visualization  # noqa: E402,F401

__all__ = ['__version__']
