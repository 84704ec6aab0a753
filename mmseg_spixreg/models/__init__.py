# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Models of mmseg_spixreg; importing this package registers them in mmseg's MODELS registry."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
