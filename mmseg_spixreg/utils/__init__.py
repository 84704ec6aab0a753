# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .checkpoint import atomic_write_bytes, load_from_local_safe, register_safe_checkpoint_loaders
from .checkpoint_data import (TRUST_ENV_VAR, UnsafeCheckpointError, checkpoint_as_data,
                              checkpoint_safe_globals)
from .dist import distributed_teardown, setup_cpu_distributed

__all__ = [
    'TRUST_ENV_VAR', 'UnsafeCheckpointError', 'atomic_write_bytes', 'checkpoint_as_data',
    'checkpoint_safe_globals', 'load_from_local_safe', 'register_safe_checkpoint_loaders',
    'distributed_teardown', 'setup_cpu_distributed'
]
