from .atomic_checkpoint_hook import AtomicCheckpointHook
from .loss_target_stop_hook import LossTargetStopHook
from .rng_state_hook import RNGStateHook

__all__ = ['AtomicCheckpointHook', 'LossTargetStopHook', 'RNGStateHook']
