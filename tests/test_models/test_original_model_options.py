# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The model options of the thesis's own code: dot-product assignment with out-of-map seeds in
the softmax, the sigmoid-modulated DCN and its 3x3 shortcut, the 3x3-conv classifier."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.utils import SuperpixelAssignment

pytestmark = pytest.mark.usefixtures('single_thread')


def _unit_projections(module):
    with torch.no_grad():
        module.fine_proj.weight.fill_(1.0)
        module.coarse_proj.weight.fill_(1.0)
    return module


def test_dot_assignment_keeps_out_of_map_seeds_in_the_softmax():
    """A 2x2 fine grid under one coarse seed: 1 in-map and 8 out-of-map seeds per pixel."""
    dot = _unit_projections(SuperpixelAssignment(1, 1, embed_dims=1, tau=0.07, similarity='dot'))
    cos = _unit_projections(SuperpixelAssignment(1, 1, embed_dims=1, tau=0.07))
    fine = torch.full((1, 1, 2, 2), 0.1)
    coarse = torch.full((1, 1, 1, 1), 0.7)
    # dot: logit 0.1 * 0.7 / 0.07 = 1 for the seed, 0 for the 8 zero seeds: e / (e + 8)
    a = dot(fine, coarse)
    assert a[0, 4].flatten().tolist() == pytest.approx([math.e / (math.e + 8)] * 4, abs=1e-6)
    assert a[0, 0].flatten().tolist() == pytest.approx([1 / (math.e + 8)] * 4, abs=1e-6)
    # cosine (eq. 1 as written): out-of-map seeds get exactly 0, the seed 1
    assert cos(fine, coarse)[0, 4].flatten().tolist() == pytest.approx([1.0] * 4)
    with pytest.raises(ValueError, match='similarity'):
        SuperpixelAssignment(1, 1, embed_dims=1, tau=0.07, similarity='l2')


def test_dot_assignment_matches_a_literal_zero_padded_softmax():
    torch.manual_seed(0)
    module = SuperpixelAssignment(5, 7, embed_dims=4, tau=0.5, similarity='dot')
    fine, coarse = torch.randn(2, 5, 6, 8), torch.randn(2, 7, 3, 4)
    f, g = module.fine_proj(fine), module.coarse_proj(coarse)
    # literal: zero-pad the seed embeddings, take each pixel's 3x3 seed window
    gpad = F.pad(g, (1, 1, 1, 1))
    ref = torch.empty(2, 9, 6, 8)
    for y in range(6):
        for x in range(8):
            for j in range(9):
                dy, dx = j // 3 - 1, j % 3 - 1
                seed = gpad[:, :, y // 2 + dy + 1, x // 2 + dx + 1]
                ref[:, j, y, x] = (f[:, :, y, x] * seed).sum(1) / 0.5
    torch.testing.assert_close(module(fine, coarse), ref.softmax(1), atol=1e-5, rtol=1e-5)


def test_sigmoid_modulation_starts_at_half_the_convolution():
    from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    for modulation, scale in (('2sigmoid', 1.0), ('sigmoid', 0.5)):
        dcn = ZeroInitModulatedDeformConv2d(4, 6, 3, padding=1, bias=True, modulation=modulation)
        with torch.no_grad():
            dcn.bias.fill_(0.25)
        plain = F.conv2d(x, dcn.weight, None, padding=1)
        # the mask multiplies the sampled input, the bias is added after
        torch.testing.assert_close(dcn(x), scale * plain + 0.25, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match='modulation'):
        ZeroInitModulatedDeformConv2d(4, 6, 3, modulation='tanh')


def test_original_dcn_backbone_and_classifier():
    from mmseg.registry import MODELS

    from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d
    backbone = MODELS.build(
        dict(
            type='DCNResNet',
            dcn_shortcut_kernel_size=3,
            dcn_shortcut_bias=True,
            dcn_modulation='sigmoid'))
    for layer in (backbone.layer2, backbone.layer3):
        shortcut, conv1 = layer[0].downsample[0], layer[0].conv1
        assert isinstance(shortcut, ZeroInitModulatedDeformConv2d)
        assert shortcut.kernel_size == (3, 3) and shortcut.stride == (2, 2)
        assert shortcut.padding == (1, 1) and shortcut.bias is not None
        assert shortcut.modulation == conv1.modulation == 'sigmoid'
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 16), (8, 8), (4, 4)]
    # the default stays the text's: 1x1 shortcut without bias, 2 sigmoid
    default = MODELS.build(dict(type='DCNResNet'))
    assert default.layer2[0].downsample[0].kernel_size == (1, 1)
    assert default.layer2[0].downsample[0].modulation == '2sigmoid'
    with pytest.raises(ValueError, match='dcn_shortcut_bias'):
        MODELS.build(dict(type='DCNResNet', dcn_shortcut_bias=True))
