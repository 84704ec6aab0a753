from .loss_target_stop_hook import LossTargetStopHook

__all__ = ['LossTargetStopHook']
