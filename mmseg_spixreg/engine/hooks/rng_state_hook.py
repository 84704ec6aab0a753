# Copyright (c) mmseg-spixreg contributors. All rights reserved.
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save torch's RNG state in checkpoints and restore it on ``--resume``.

    mmengine 0.10.7 re-seeds a resumed run but does not restore the random number generators, so
    dropout masks (and any other torch randomness in the model) after a resume differ from those
    of an uninterrupted run. This hook stores ``torch.get_rng_state()`` (and the CUDA states when
    CUDA is used) in every checkpoint under ``'rng_state'`` and, after a resume, restores them
    right before the first resumed training iteration (after mmengine has skipped the already
    trained batches of the dataloader). With ``randomness=dict(seed=..., deterministic=True)`` and
    ``num_workers=0``, an interrupted + resumed CPU run then ends with the same weights as an
    uninterrupted one (tests/test_tools/test_train.py). The data pipeline's numpy randomness needs
    no restoring there: the skipped batches replay it in the main process. With dataloader worker
    processes the augmentation streams depend on the worker seeding and are not reproduced.

    On a GPU machine mmengine's resume loads the checkpoint with ``map_location`` on the GPU, so
    the stored states arrive as CUDA tensors; torch only accepts CPU byte tensors as generator
    states, so they are moved back before restoring (:func:`cpu_rng_state`).
    """

    priority = 'VERY_HIGH'
    KEY = 'rng_state'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint):
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[self.KEY] = state

    def after_load_checkpoint(self, runner, checkpoint):
        # only a resume continues the random streams; load_from (fine-tuning) starts fresh
        if runner._resume and self.KEY in checkpoint:
            self._pending = checkpoint[self.KEY]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(cpu_rng_state(state['torch']))
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([cpu_rng_state(s) for s in state['cuda']])
        print_log('RNGStateHook: restored the RNG state of the checkpoint', logger='current')


def cpu_rng_state(state):
    """A generator state as torch's ``set_rng_state`` functions accept it.

    Args:
        state (torch.Tensor): A state saved by ``torch.get_rng_state`` /
            ``torch.cuda.get_rng_state``: a 1-D uint8 tensor, on whatever device the checkpoint
            loader mapped it to (a CUDA device when resuming on a GPU).

    Returns:
        torch.Tensor: The same bytes as a CPU uint8 tensor.
    """
    if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.dim() != 1:
        raise TypeError(f'RNGStateHook: the checkpoint\'s rng_state holds {type(state).__name__}'
                        f'{tuple(state.shape) if isinstance(state, torch.Tensor) else ""}, not a '
                        '1-D uint8 generator state')
    return state.cpu()
