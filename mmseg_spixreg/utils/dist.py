# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Distributed training on machines without CUDA, and a clean process-group teardown."""
import logging
import os
import sys
from contextlib import contextmanager

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


@contextmanager
def distributed_teardown(hard_exit: bool = False):
    """Destroy the default process group when the wrapped block ends, before interpreter exit.

    mmengine's Runner initialises the process group (or :func:`setup_cpu_distributed` does) but
    never destroys it. A gloo rank that reaches interpreter shutdown with its process group still
    alive has gloo's C++ worker threads (and the asynchronous work objects they hold, tensors with
    Python references included) destroyed during finalisation; this intermittently ends the
    process with ``terminate called without an active exception`` (SIGABRT, exit code -6) *after*
    the work is done, and ``torchrun`` then reports the run as failed. Reproduced here with a
    plain 5-rank gloo script (all_reduce / all_gather / barrier, no ``destroy_process_group``):
    see docs/design.md "Reliability".

    On a normal end the ranks first meet at a barrier (no rank tears down its connections while
    a peer still talks to it), then each destroys its process group. On an exception the group is
    destroyed without the barrier (a barrier would wait forever for a failed peer) and the
    exception propagates. Without an initialised process group this does nothing.

    Destroying the group is not always enough: DDP's reducer (and whatever else holds the gloo
    process group) keeps the C++ object and its threads alive until interpreter finalisation,
    where the same abort still happened (1 run in the fresh-clone CI rehearsal of the ``--gpus 2``
    runner test). With ``hard_exit=True`` (the tools' entry points), a distributed rank that
    finished normally therefore ends right after the teardown with ``os._exit(0)``, after
    flushing the logging handlers and standard streams: nothing is left to finalise. mmengine has
    closed the visualizer in ``after_run`` by then.

    Args:
        hard_exit (bool): End a distributed rank that finished without an exception with
            ``os._exit(0)`` after the teardown. Defaults to False.
    """
    try:
        yield
    except BaseException:
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
        raise
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        if hard_exit:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
