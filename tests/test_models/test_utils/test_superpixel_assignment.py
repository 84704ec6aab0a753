# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SuperpixelAssignment (eq. 1) against the pixel-by-pixel loop reference (tests/utils.py),
its required K / tau and gradients.
"""

import pytest
import torch

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.utils import SuperpixelAssignment
from mmseg_spixreg.ops import valid_seed_mask
from tests.utils import ref_assignment


@pytest.mark.parametrize('size', [(6, 8), (2, 2), (4, 10)])
def test_assignment_matches_loop_reference(size):
    torch.manual_seed(4)
    H, W = size
    module = SuperpixelAssignment(5, 7, embed_dims=6, tau=0.3).double()
    fine = torch.randn(2, 5, H, W, dtype=torch.float64)
    coarse = torch.randn(2, 7, H // 2, W // 2, dtype=torch.float64)
    assign = module(fine, coarse)
    assert assign.shape == (2, 9, H, W) and assign.dtype == torch.float64
    torch.testing.assert_close(assign, ref_assignment(module, fine, coarse))
    invalid = ~valid_seed_mask(H, W).expand_as(assign)
    assert (assign[invalid] == 0).all()  # exactly zero
    assert (assign[~invalid] > 0).all()
    torch.testing.assert_close(assign.sum(1), torch.ones(2, H, W, dtype=torch.float64))


def test_assignment_k_and_tau_are_required_and_gradients():
    # no paper defaults in the module: K and tau come from the config (configs/_base_/models/
    # hcfcn.py through the neck), as required keyword arguments
    with pytest.raises(TypeError, match="required keyword-only arguments: 'embed_dims' and 'tau'"):
        SuperpixelAssignment(4, 6)
    with pytest.raises(TypeError):
        SuperpixelAssignment(4, 6, 48, 0.07)  # keyword-only
    module = SuperpixelAssignment(4, 6, embed_dims=48, tau=0.07)
    assert module.embed_dims == 48 and module.tau == pytest.approx(0.07)
    assert module.fine_proj.weight.shape == (48, 4, 1, 1)
    assert module.coarse_proj.weight.shape == (48, 6, 1, 1)
    fine = torch.randn(2, 4, 8, 6)
    coarse = torch.randn(2, 6, 4, 3)
    fine[0, :, 0, 0] = 0  # zero feature vector: cosine 0, no NaN
    assign = module(fine, coarse)
    (assign * torch.randn_like(assign)).sum().backward()
    for p in (module.fine_proj.weight, module.coarse_proj.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0


def test_assignment_gradcheck():
    torch.manual_seed(5)
    module = SuperpixelAssignment(3, 4, embed_dims=5, tau=0.5, bias=True).double()
    fine = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    coarse = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (fine, coarse))
