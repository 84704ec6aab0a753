# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .checkpoint import (TRUST_ENV_VAR, UnsafeCheckpointError, atomic_write_bytes,
                         checkpoint_safe_globals, load_from_local_safe,
                         register_safe_checkpoint_loaders)
from .dist import distributed_teardown, setup_cpu_distributed

__all__ = [
    'TRUST_ENV_VAR', 'UnsafeCheckpointError', 'atomic_write_bytes', 'checkpoint_safe_globals',
    'load_from_local_safe', 'register_safe_checkpoint_loaders', 'distributed_teardown',
    'setup_cpu_distributed'
]
