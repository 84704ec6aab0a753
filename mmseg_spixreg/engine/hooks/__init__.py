# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .atomic_checkpoint_hook import AtomicCheckpointHook, recorded_best_checkpoint
from .loss_target_stop_hook import LossTargetStopHook
from .main_process_logger_hook import MainProcessLoggerHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'AtomicCheckpointHook', 'LossTargetStopHook', 'MainProcessLoggerHook', 'RNGStateHook',
    'recorded_best_checkpoint'
]
