# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""AssignmentNeck: the superpixel assignments of consecutive backbone strides.
"""

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)

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
    feats = (torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8,
                                                    8), torch.randn(2, 32, 4,
                                                                    4), torch.randn(2, 32, 4, 4))
    out = neck(feats)
    assert isinstance(out, tuple) and len(out) == 4 and all(a is b for a, b in zip(out, feats))
    assert out.levels == (4, 8)
    assert [tuple(a.shape) for a in out.assignments] == [(2, 9, 16, 16), (2, 9, 8, 8)]
    for a in out.assignments:
        assert torch.allclose(a.sum(1), torch.ones(()), atol=1e-5)


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
