from .checkpoint import load_from_local_trusted, register_trusted_local_checkpoint_loader
from .dist import setup_cpu_distributed

__all__ = [
    'load_from_local_trusted', 'register_trusted_local_checkpoint_loader',
    'setup_cpu_distributed'
]
