# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""DCNResNet: ResNet34 to conv4_x (output stride 16) with deformable stride-2 convs.

Random initialisation on CPU, small inputs.
"""

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_backbone_dcn_downsampling_and_pairs():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    dcn = MODELS.build(dict(type='DCNResNet', depth=34, init_cfg=None))
    dcn.init_weights()
    # exactly the stride-2 convs of conv3_x / conv4_x (3x3 + 1x1 shortcut); stem stays plain
    names = sorted(n for n, m in dcn.named_modules()
                   if isinstance(m, ZeroInitModulatedDeformConv2d))
    assert names == [
        'layer2.0.conv1', 'layer2.0.downsample.0', 'layer3.0.conv1', 'layer3.0.downsample.0'
    ]
    assert not hasattr(dcn, 'layer4')
    for n in names:
        off = dcn.get_submodule(n).conv_offset
        assert off.weight.abs().sum() == 0 and off.bias.abs().sum() == 0
    # same weights without DCN -> same output (DCN starts as the plain ResNet)
    plain = MODELS.build(dict(type='DCNResNet', depth=34, init_cfg=None, dcn_downsample=False))
    missing, unexpected = plain.load_state_dict(dcn.state_dict(), strict=False)
    assert not missing and all('conv_offset' in k for k in unexpected)
    dcn.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 96)
    out, ref = dcn(x), plain(x)
    assert [tuple(o.shape) for o in out] == [(1, 64, 16, 24), (1, 128, 8, 12), (1, 256, 4, 6)]
    for o, r in zip(out, ref):
        assert torch.allclose(o, r, atol=1e-4)
    # forward: the plain tuple of stage outputs (stock heads, FCN-16); forward_pairs: the same
    # outputs plus the (x_s, z_2s) pair of each downsampling, for the assignment neck
    assert type(out) is tuple
    feats = dcn.forward_pairs(x)
    assert len(feats.stages) == 3 and all(torch.equal(a, b) for a, b in zip(feats.stages, out))
    assert sorted(feats.pairs) == [4, 8]
    assert tuple(feats.pairs[4][0].shape) == (1, 64, 16, 24)
    assert tuple(feats.pairs[4][1].shape) == (1, 128, 8, 12)
    assert tuple(feats.pairs[8][1].shape) == (1, 256, 4, 6)
    assert torch.equal(feats.pairs[4][0], out[0])  # x4: the feature entering conv3_x


def test_torchvision_resnet34_checkpoint_maps_onto_the_backbone():
    """The `torchvision://resnet34` init path: every ResNet34 weight up to conv4_x loads (DCN
    layers included); only the zero-initialised offset convs are missing."""
    torchvision = pytest.importorskip('torchvision')
    init_default_scope('mmseg')
    state = torchvision.models.resnet34().state_dict()  # architecture only, no download
    backbone = MODELS.build(dict(type='DCNResNet', depth=34, init_cfg=None))
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    assert missing and all('.conv_offset.' in k for k in missing)
    assert {k.split('.')[0] for k in unexpected} == {'layer4', 'fc'}
    assert torch.equal(backbone.layer3[0].conv1.weight, state['layer3.0.conv1.weight'])
    assert torch.equal(backbone.layer2[0].downsample[0].weight,
                       state['layer2.0.downsample.0.weight'])
