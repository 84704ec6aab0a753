"""Distributed-training helpers."""
import torch


def setup_cpu_dist_backend(cfg):
    """Use the gloo backend when a distributed launcher runs on a machine without CUDA.

    mmseg's runtime configs default to ``env_cfg.dist_cfg.backend='nccl'``, which cannot start
    without GPUs. On a CPU-only machine (tests, laptops) the processes then use gloo; on GPU
    machines the config's choice is kept.

    Args:
        cfg (mmengine.Config): The full config, modified in place.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
