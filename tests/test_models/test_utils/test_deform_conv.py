# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""ZeroInitModulatedDeformConv2d: starts as a plain conv, runs in float32 under autocast
(mmcv's deformable convolution has no bfloat16 CPU kernel).
"""

import pytest
import torch

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_dcn_layer_starts_as_plain_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
    dcn = ZeroInitModulatedDeformConv2d(8, 16, 3, stride=2, padding=1)
    dcn.weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 8, 15, 17)
    assert torch.allclose(dcn(x), conv(x), atol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
def test_deformable_conv_runs_in_float32_under_autocast(dtype):
    torch.manual_seed(0)
    layer = ZeroInitModulatedDeformConv2d(8, 16, 3, stride=2, padding=1)
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.1)  # non-trivial offsets
    x = torch.randn(2, 8, 12, 10)
    ref = layer(x)
    with torch.autocast('cpu', dtype=dtype):
        out = layer(x.to(dtype))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, layer(x.to(dtype).float()))
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)
    out.sum().backward()
    assert torch.isfinite(layer.conv_offset.weight.grad).all()
