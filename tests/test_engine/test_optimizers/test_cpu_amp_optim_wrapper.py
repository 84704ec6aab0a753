# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""CPUAmpOptimWrapper: CPU mixed precision is bfloat16 autocast only (``tools/train.py --amp``
without a GPU: tests/test_tools/test_train.py)."""
import pytest
import torch
from mmseg.registry import OPTIM_WRAPPERS

import mmseg_spixreg  # noqa: F401  (registers the optimizer wrappers)


def test_cpu_amp_optim_wrapper_is_bfloat16_only():
    model = torch.nn.Linear(3, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='CPUAmpOptimWrapper',
            loss_scale='dynamic',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="supports dtype='bfloat16' only"):
        OPTIM_WRAPPERS.build(
            dict(
                type='CPUAmpOptimWrapper',
                dtype='float16',
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
