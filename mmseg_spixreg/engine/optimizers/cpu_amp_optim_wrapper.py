# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Mixed precision training on CPU (``--amp`` without a GPU): bfloat16 autocast."""
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` running forward and loss under CPU autocast in bfloat16.

    mmengine 0.10.7's ``AmpOptimWrapper`` refuses to be built without a GPU/NPU/MLU/MUSA device
    (an ``AssertionError``). On a CPU-only machine ``tools/train.py --amp`` uses this wrapper
    instead. bfloat16 has float32's exponent range, so no loss scaling is needed (and none is
    done): gradients neither overflow nor underflow more than in float32. float16 is refused on
    CPU (it would need loss scaling and is not faster there).

    The model's numerically sensitive parts stay in float32 under autocast on their own: the
    assignment softmax and the superpixel ops (``mmseg_spixreg.ops``), the SLIC loss and mmcv's
    deformable convolution (no bfloat16 CPU kernel).

    Args:
        dtype (str | torch.dtype): autocast dtype; only 'bfloat16'. Default: 'bfloat16'.
        **kwargs: ``OptimWrapper`` arguments (optimizer, clip_grad, accumulative_counts).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype != torch.bfloat16:
            raise ValueError(f'CPUAmpOptimWrapper: CPU mixed precision supports '
                             f"dtype='bfloat16' only, got {dtype!r}")
        kwargs.pop('loss_scale', None)  # set by `--amp` for AmpOptimWrapper; unused here
        super().__init__(**kwargs)
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        """``OptimWrapper``'s context (gradient accumulation) + bfloat16 CPU autocast.

        Args:
            model (nn.Module): the training model.
        """
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield
