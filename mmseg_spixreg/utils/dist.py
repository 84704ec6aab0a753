"""Distributed training on machines without CUDA."""
import torch
import torch.distributed as torch_dist


def setup_cpu_distributed(cfg):
    """Make ``--launcher pytorch`` work on a CPU-only machine (gloo backend, no device ids).

    mmengine 0.10.7 always calls ``torch.cuda.set_device(local_rank)`` when it initialises the
    process group and wraps the model in DDP with ``device_ids=[local_rank]``; both fail without
    CUDA, and mmseg's runtime default backend 'nccl' needs GPUs anyway. On a CPU-only machine this
    initialises the process group itself with gloo from torchrun's environment (mmengine then sees
    an initialised group and skips its own initialisation) and sets ``model_wrapper_cfg`` to a
    CPU DDP wrapper (``device_ids=None``) unless the config has one. On GPU machines, and for
    non-distributed runs, nothing changes.

    Gradient averaging is DDP's: every rank computes its losses (CE and L_SLIC, each a mean over
    that rank's pixels) and DDP averages the gradients over ranks, so with equal per-rank batch
    sizes the effective L_SLIC is the mean over all pixels of the global batch.

    Args:
        cfg (mmengine.Config): The full config (``cfg.launcher`` set), modified in place.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} without CUDA is not supported; use '
                           '--launcher pytorch (tools/dist_train.sh) for CPU processes')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        torch_dist.init_process_group(backend=dist_cfg['backend'], **kwargs)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
