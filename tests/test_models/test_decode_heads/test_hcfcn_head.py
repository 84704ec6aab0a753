# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""HCFCNHead: convs before the classifier, the L_SLIC-only mode, its errors.

The head inside the configs' models, random initialisation, on CPU, small inputs.
"""

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from tests.utils import build_model, make_batch, model_cfg, train_losses

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_head_with_convs_before_the_classifier():
    model = build_model('hcfcn_r34_cityscapes_fine.py', **{
        'model.decode_head.num_convs': 2,
        'model.decode_head.channels': 96
    })
    assert len(model.decode_head.convs) == 2 and model.decode_head.conv_seg.in_channels == 96
    losses, total = train_losses(model, make_batch())
    assert torch.isfinite(total) and 'decode.loss_slic' in losses
    with pytest.raises(ValueError, match='channels must equal in_channels'):
        MODELS.build(
            model_cfg('hcfcn_r34_cityscapes_fine.py', **{'model.decode_head.channels': 96}))


def test_slic_only_mode_needs_no_labels():
    model = build_model('hcfcn_r34_cityscapes_fine.py', **{'model.decode_head.supervised': False})
    losses, total = train_losses(model, make_batch(labels=False))
    assert set(losses) == {'decode.loss_slic'} and torch.isfinite(total)
    with pytest.raises(ValueError, match='supervised=False'):
        MODELS.build(
            model_cfg('hcfcn16_r34_cityscapes_fine.py', **{'model.decode_head.supervised': False}))


def test_slic_loss_without_slic_image_is_a_clear_error():
    model = build_model('hcfcn_r34_cityscapes_fine.py',
                        **{'model.data_preprocessor.type': 'SegDataPreProcessor'})
    with pytest.raises(ValueError, match='SpixSegDataPreProcessor'):
        train_losses(model, make_batch())


def test_coarse_logits_upsampled_through_the_necks_levels():
    """forward = upsample_logits(coarse_logits): the classifier on the stride-16 feature, then
    the neck's assignments coarsest first; predict_superpixels resizes to the size it is given
    (the segmentor passes the size of the predicted logits)."""
    model = build_model('hcfcn_r34_cityscapes_fine.py').eval()
    head = model.decode_head
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(2, 3, 64, 48))
        coarse = head.coarse_logits(feats)
        assert coarse.shape == (2, 19, 4, 3)  # stride 2 * levels[-1] = 16
        out = head(feats)
        assert out.shape == (2, 19, 16, 12)  # stride levels[0] = 4
        torch.testing.assert_close(
            out, head.upsample_logits(coarse, feats.assignments, feats.fine_sizes))
        spix = head.predict_superpixels(feats, (64, 48))
    assert spix.shape == (2, 64, 48) and spix.dtype == torch.int64
    assert int(spix.max()) < 4 * 3  # ids of the stride-16 seeds
    assert not hasattr(head, 'stride16_logits')


def test_head_takes_the_necks_output_by_name():
    """HCFCNHead reads AssignedFeatures by name; the plain tuple of stage outputs (what a stock
    head gets) is a ValueError naming what it needs, in forward, loss and superpixels alike;
    the wrapped logits_head gets the plain tuple ``stages``."""
    model = build_model('hcfcn-deeplabv3_r50-d16_cityscapes_fine.py').eval()
    head = model.decode_head
    seen = []
    head.logits_head.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
        head(feats)
    assert type(seen[0]) is tuple and len(seen[0]) == 4
    assert all(a is b for a, b in zip(seen[0], feats.stages))
    match = 'HCFCNHead needs AssignedFeatures .*AssignmentNeck.*got tuple'
    for call in (lambda: head(feats.stages),
                 lambda: head.predict_superpixels(feats.stages, (64, 64)),
                 lambda: head.loss(feats.stages, [], model.train_cfg)):
        with pytest.raises(ValueError, match=match):
            call()
