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
    uninterrupted one (tests/test_reliability.py). The data pipeline's numpy randomness needs no
    restoring there: the skipped batches replay it in the main process. With dataloader worker
    processes the augmentation streams depend on the worker seeding and are not reproduced.
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
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        print_log('RNGStateHook: restored the RNG state of the checkpoint', logger='current')
