# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""AssignmentNeck: the superpixel assignments of consecutive backbone strides.
"""

from dataclasses import FrozenInstanceError

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.utils import AssignedFeatures, BackboneFeatures

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_neck_pairs_consecutive_stride_outputs_of_stock_backbone():
    init_default_scope('mmseg')
    neck = MODELS.build(
        dict(
            type='AssignmentNeck',
            in_channels=[8, 16, 32, 32],
            in_strides=[4, 8, 16, 16],
            levels=(4, 8),
            embed_dims=16,
            tau=0.07))
    stages = tuple(torch.randn(2, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4), (32, 4)))
    out = neck(BackboneFeatures(stages))
    assert isinstance(out, AssignedFeatures)
    assert len(out.stages) == 4 and all(a is b for a, b in zip(out.stages, stages))
    assert out.levels == (4, 8) and out.fine_sizes == ((16, 16), (8, 8))
    assert [tuple(a.shape) for a in out.assignments] == [(2, 9, 16, 16), (2, 9, 8, 8)]
    for a in out.assignments:
        assert torch.allclose(a.sum(1), torch.ones(()), atol=1e-5)
    # without pairs the stage outputs are compared: A(4) from stages 0 and 1
    a4 = neck.assigners[0](stages[0], stages[1])
    torch.testing.assert_close(out.assignments[0], a4)
    # a pair given for a level replaces the stage outputs of that level only
    pair = (torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8))
    paired = neck(BackboneFeatures(stages, {4: pair}))
    torch.testing.assert_close(paired.assignments[0], neck.assigners[0](*pair))
    torch.testing.assert_close(paired.assignments[1], out.assignments[1])


def test_neck_takes_backbone_features_by_name():
    """A plain tuple of stage outputs (a stock EncoderDecoder calling the neck on the backbone's
    output) is a ValueError naming what the neck needs, not a silent change of the pairs."""
    init_default_scope('mmseg')
    neck = MODELS.build(NECK_CFG)
    stages = (torch.randn(1, 64, 8, 8), torch.randn(1, 128, 4, 4), torch.randn(1, 256, 2, 2))
    with pytest.raises(ValueError, match='BackboneFeatures.*SpixEncoderDecoder'):
        neck(stages)
    with pytest.raises(ValueError, match='expected 3 backbone outputs'):
        neck(BackboneFeatures(stages[:2]))


def test_features_are_values_not_sequences():
    """The neck's output cannot be silently reduced to its stage outputs: it is neither
    iterable nor indexable, and it is frozen."""
    stages = (torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4))
    a = torch.rand(1, 9, 8, 8)
    out = AssignedFeatures(stages, [a], [4], [(8, 8)])
    assert out.assignments == (a, ) and out.levels == (4, ) and out.fine_sizes == ((8, 8), )
    for feats in (out, BackboneFeatures(stages)):
        with pytest.raises(TypeError):
            list(feats)
        with pytest.raises(TypeError):
            feats[0]
        with pytest.raises(FrozenInstanceError):
            feats.stages = ()
    with pytest.raises(ValueError, match='one of each per level'):
        AssignedFeatures(stages, [a], [4, 8], [(8, 8)])


@pytest.mark.parametrize('neck_kw, match', [
    (dict(embed_dims=0), 'embed_dims'),
    (dict(embed_dims=-3), 'embed_dims'),
    (dict(tau=0.0), 'tau'),
    (dict(tau=-0.07), 'tau'),
    (dict(levels=(8, 16)), 'unknown assignment level 16'),
    (dict(levels=(2, 4)), 'unknown assignment level 2'),
    (dict(levels=(8, 4)), 'consecutive'),
    (dict(in_strides=[4, 8, 16, 32], in_channels=[64, 128, 256, 512],
          levels=(4, 16)), 'consecutive'),
])
def test_neck_validation(neck_kw, match):
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=match):
        MODELS.build({**NECK_CFG, **neck_kw})


NECK_CFG = dict(
    type='AssignmentNeck',
    in_channels=[64, 128, 256],
    in_strides=[4, 8, 16],
    levels=(4, 8),
    embed_dims=48,
    tau=0.07)


@pytest.mark.parametrize('missing', [('levels', ), ('embed_dims', ), ('tau', ),
                                     ('levels', 'embed_dims', 'tau')])
def test_neck_has_no_paper_defaults(missing):
    """levels, K and tau are required keyword arguments (their paper values live in
    configs/_base_/models/hcfcn.py): leaving one out is a TypeError naming it."""
    init_default_scope('mmseg')
    cfg = {k: v for k, v in NECK_CFG.items() if k not in missing}
    with pytest.raises(TypeError, match='required keyword-only argument') as info:
        MODELS.build(cfg)
    assert all(f"'{name}'" in str(info.value) for name in missing)


def test_neck_k_is_named_embed_dims():
    """K has one name, embed_dims (neck, SuperpixelAssignment, configs); the old neck name
    num_proj is an unknown argument."""
    init_default_scope('mmseg')
    neck = MODELS.build(NECK_CFG)
    assert neck.embed_dims == 48 and all(a.embed_dims == 48 for a in neck.assigners)
    assert all(a.tau == pytest.approx(0.07) for a in neck.assigners)
    with pytest.raises(TypeError, match='num_proj'):
        MODELS.build({**NECK_CFG, 'num_proj': 48})
