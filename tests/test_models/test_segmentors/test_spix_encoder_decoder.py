# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SpixEncoderDecoder: each method's training step, validation of the whole config,
gradients, the data flow (backbone pairs to the neck, stage outputs to auxiliary heads),
prediction with pred_superpixels (whole / slide / flip), the head in a stock DeepLabV3.

Everything runs on CPU with random initialisation (no download) on small inputs. The parts have
their own tests: tests/test_models/test_{backbones,necks,decode_heads,losses,...}.
"""
import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from tests.utils import build_model, make_batch, model_cfg, train_losses

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')

# ----------------------------------------------------------------------------------------------
# validation of the whole model config


@pytest.mark.parametrize('changes, match', [
    ({
        'model.decode_head.loss_slic.loss_weight': -0.1
    }, 'lambda'),
    ({
        'model.decode_head.loss_slic.m': -1.0
    }, 'm must be'),
    ({
        'model.neck.levels': (4, 16)
    }, 'consecutive strides'),
    ({
        'model.neck.embed_dims': 0
    }, 'embed_dims'),
    ({
        'model.neck.tau': 0
    }, 'tau'),
])
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg('hcfcn_r34_cityscapes_fine.py', **changes))


def test_head_follows_the_neck_levels():
    """The levels are set in the neck alone: the head follows whatever levels the neck computes
    (one level: A(8) only, stride-16 logits upsampled to stride 8)."""
    model = build_model('hcfcn_r34_cityscapes_fine.py', **{'model.neck.levels': (8, )})
    assert model.neck.levels == (8, )
    feats = model.extract_feat(torch.randn(1, 3, 64, 48))
    assert feats.levels == (8, ) and model.decode_head(feats).shape == (1, 19, 8, 6)
    losses, total = train_losses(model, make_batch())
    assert {'decode.loss_ce', 'decode.loss_slic'} <= set(losses) and torch.isfinite(total)


def test_superpixel_head_without_neck_fails_at_build_time():
    cfg = model_cfg('hcfcn_r34_cityscapes_fine.py')
    cfg.pop('neck')
    with pytest.raises(ValueError, match='needs an AssignmentNeck'):
        MODELS.build(cfg)


# ----------------------------------------------------------------------------------------------
# training step of each method


@pytest.mark.parametrize('name, slic', [
    ('fcn16_r34_cityscapes_fine.py', False),
    ('hcfcn16_r34_cityscapes_fine.py', False),
    ('hcfcn_r34_cityscapes_fine.py', True),
    ('hcfcn_r34_suim_coarse.py', True),
])
def test_train_step(name, slic):
    model = build_model(name)
    num_classes = model.decode_head.num_classes
    losses, total = train_losses(model, make_batch(num_classes=num_classes))
    expected = {'decode.loss_ce', 'decode.acc_seg'} | ({'decode.loss_slic'} if slic else set())
    assert set(losses) == expected
    assert all(torch.isfinite(v).all() for v in losses.values())
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if slic:
        lam = model.decode_head.loss_slic.loss_weight
        assert lam == pytest.approx(0.075 if 'cityscapes' in name else 0.05)
        assert losses['decode.loss_slic'] > 0


def _grad_norms(model, loss):
    model.zero_grad()
    loss.backward()
    neck = {
        n: p.grad.abs().sum().item() if p.grad is not None else 0.0
        for n, p in model.neck.named_parameters()
    }
    offs = {
        n: p.grad.abs().sum().item() if p.grad is not None else 0.0
        for n, p in model.backbone.named_parameters() if 'conv_offset' in n
    }
    return neck, offs


@pytest.mark.parametrize('term', ['ce', 'slic'])
def test_gradients_reach_projections_and_dcn_offsets(term):
    # random init without mmseg's zero-init of the last BN of each residual branch (which makes
    # the strided conv1's branch output exactly 0 at step 0; pretrained weights have no such zero)
    model = build_model('hcfcn_r34_cityscapes_fine.py',
                        **{'model.backbone.zero_init_residual': False})
    losses, _ = train_losses(model, make_batch())
    neck, offs = _grad_norms(model,
                             losses['decode.loss_ce' if term == 'ce' else 'decode.loss_slic'])
    # W and W~ (the 1x1 projections, weights and biases) of both levels
    assert len(neck) >= 4 and all(v > 0 for v in neck.values()), neck
    # offset/mask convs of the four DCN layers (weights and biases)
    assert len(offs) == 8 and all(v > 0 for v in offs.values()), offs


# ----------------------------------------------------------------------------------------------
# prediction: pred_sem_seg + pred_superpixels, whole / slide / flip


def _test_batch(h, w, ori, flip=False, seed=0):
    batch = make_batch(b=1, h=h, w=w, labels=False, seed=seed)
    batch['data_samples'][0].set_metainfo(
        dict(ori_shape=ori, flip=flip, flip_direction='horizontal'))
    return batch


def test_predict_whole_returns_full_resolution_maps():
    model = build_model('hcfcn_r34_cityscapes_fine.py').eval()
    # 60x76 input (not a multiple of 16: padded by test_cfg.size_divisor), original 120x152
    batch = _test_batch(60, 76, (120, 152))
    with torch.no_grad():
        out = model.test_step(batch)[0]
    assert tuple(out.pred_sem_seg.shape) == (120, 152)
    spix = out.pred_superpixels.data
    assert spix.dtype == torch.long and tuple(spix.shape) == (1, 120, 152)
    # ids are stride-16 seeds of the padded 64x80 input: 4 x 5 grid
    assert spix.min() >= 0 and spix.max() < 4 * 5 and len(spix.unique()) > 4
    # flip: the superpixels are flipped back like pred_sem_seg
    flipped = _test_batch(60, 76, (120, 152), flip=True)
    flipped['inputs'][0] = batch['inputs'][0].flip(-1)
    with torch.no_grad():
        out_f = model.test_step(flipped)[0]
    assert tuple(out_f.pred_superpixels.shape) == (120, 152)
    assert (out_f.pred_sem_seg.data == out.pred_sem_seg.data).float().mean() > 0.5
    # a stock EncoderDecoder does not build the neck's input (BackboneFeatures): a clear error,
    # not other feature pairs
    cfg = model_cfg('hcfcn_r34_cityscapes_fine.py', **{'model.type': 'EncoderDecoder'})
    stock = MODELS.build(cfg).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="model.type='SpixEncoderDecoder'"):
        stock.test_step(copy.deepcopy(batch))


def test_extract_feat_feeds_the_neck_dcnresnets_pairs():
    """With DCNResNet, A(s) compares the backbone's (x_s, z_2s) pairs (forward_pairs), not the
    stage outputs; the neck's output keeps the backbone's stage outputs (forward) unchanged."""
    # without the zero-initialised last BN of each residual branch (which makes every later
    # block of a stage the identity: z(2s) would equal the stage output)
    model = build_model('hcfcn_r34_cityscapes_fine.py', **{
        'model.backbone.zero_init_residual': False
    }).eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        feats = model.extract_feat(x)
        backbone = model.backbone.forward_pairs(x)
        stages = model.backbone(x)
        for assigner, a, s in zip(model.neck.assigners, feats.assignments, (4, 8)):
            torch.testing.assert_close(a, assigner(*backbone.pairs[s]))
        assert not torch.allclose(feats.assignments[1], model.neck.assigners[1](stages[1],
                                                                                stages[2]))
    assert all(torch.equal(a, b) for a, b in zip(feats.stages, stages))


def test_assignment_neck_needs_a_superpixel_head():
    cfg = model_cfg('hcfcn_r34_cityscapes_fine.py')
    cfg.decode_head = dict(
        type='FCNHead', in_channels=256, in_index=2, channels=256, num_convs=0, num_classes=19)
    with pytest.raises(ValueError, match='AssignmentNeck feeds an HCFCNHead.*FCNHead'):
        MODELS.build(cfg)


def test_predict_without_padding_odd_sizes_and_slide():
    # stock preprocessing without size_divisor: odd feature sizes are padded inside the neck
    model = build_model('hcfcn_r34_cityscapes_fine.py', **{
        'model.data_preprocessor.test_cfg': None
    }).eval()
    batch = _test_batch(50, 70, (50, 70))
    with torch.no_grad():
        out = model.test_step(batch)[0]
        logits = model._forward(model.data_preprocessor(copy.deepcopy(batch))['inputs'])
    assert tuple(logits.shape[-2:]) == (13, 18)  # ceil(50/4), ceil(70/4)
    assert tuple(out.pred_sem_seg.shape) == (50, 70)
    assert tuple(out.pred_superpixels.shape) == (50, 70)
    # slide inference: windows of 32x32, stride 24
    model.test_cfg = Config(dict(mode='slide', crop_size=(32, 32), stride=(24, 24)))
    with torch.no_grad():
        out = model.test_step(_test_batch(48, 64, (48, 64)))[0]
    assert tuple(out.pred_sem_seg.shape) == (48, 64)
    spix = out.pred_superpixels.data
    assert tuple(spix.shape) == (1, 48, 64)
    # 3 windows wide, 2 high, 2x2 seeds each: up to 24 distinct ids
    assert len(spix.unique()) > 6 and spix.max() < 24
    # the same as pasting each window's own prediction, rows then columns, ids offset
    inputs = model.data_preprocessor(_test_batch(48, 64, (48, 64)))['inputs']
    expected, offset = torch.zeros(1, 48, 64, dtype=torch.long), 0
    logits, count = torch.zeros(1, 19, 48, 64), torch.zeros(1, 1, 48, 64)
    with torch.no_grad():
        for y1, x1 in ((0, 0), (0, 24), (0, 32), (16, 0), (16, 24), (16, 32)):
            window = model.encode_decode(inputs[:, :, y1:y1 + 32, x1:x1 + 32],
                                         [dict(img_shape=(32, 32))])
            expected[:, y1:y1 + 32, x1:x1 + 32] = window.superpixels + offset
            offset += int(window.superpixels.max()) + 1
            logits[:, :, y1:y1 + 32, x1:x1 + 32] += window.seg_logits
            count[:, :, y1:y1 + 32, x1:x1 + 32] += 1
        got = model.slide_inference(inputs, [dict(img_shape=(48, 64))])
    assert torch.equal(got.superpixels, expected) and got.assignments is None
    torch.testing.assert_close(got.seg_logits, logits / count)
    assert torch.equal(spix, expected)


def test_superpixel_geometry_matches_pred_sem_seg():
    """pred_superpixels undergo exactly pred_sem_seg's padding removal, flip and resize."""
    model = build_model('hcfcn_r34_cityscapes_fine.py').eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 12, (2, 40, 48), generator=g)
    results = [SegDataSample(), SegDataSample()]
    metas = [
        dict(
            img_padding_size=[0, 6, 0, 4],
            ori_shape=(36, 42),
            flip=True,
            flip_direction='horizontal'),
        dict(padding_size=[0, 0, 0, 8], ori_shape=(32, 48), flip=True, flip_direction='vertical')
    ]
    for r, m in zip(results, metas):
        r.set_metainfo(m)
    # the same map as one-hot logits through mmseg's postprocess_result
    logits = F.one_hot(ids, 12).permute(0, 3, 1, 2).float() * 10
    expected = model.postprocess_result(logits, copy.deepcopy(results))
    got = model.postprocess_superpixels(ids, results, only_prediction=False)
    for e, o in zip(expected, got):
        assert torch.equal(o.pred_superpixels.data, e.pred_sem_seg.data)
    # resizing to ori_shape is nearest: an integer upscale repeats every id
    r = SegDataSample()
    r.set_metainfo(dict(ori_shape=(80, 96)))
    up = model.postprocess_superpixels(ids[:1], [r], only_prediction=False)[0]
    assert torch.equal(up.pred_superpixels.data[0],
                       ids[0].repeat_interleave(2, 0).repeat_interleave(2, 1))


# ----------------------------------------------------------------------------------------------
# the head + neck in a stock mmseg model (DeepLabV3, ResNet50V1c) with an auxiliary FCNHead


def test_deeplabv3_hcfcn_train_and_predict():
    model = build_model('hcfcn-deeplabv3_r50-d16_cityscapes_fine.py')
    assert type(model.backbone).__name__ == 'ResNetV1c'
    # the auxiliary FCNHead gets the plain tuple of the backbone's stage outputs
    aux = model.auxiliary_head
    with mock.patch.object(aux, 'forward', wraps=aux.forward) as aux_forward:
        losses, total = train_losses(model, make_batch(b=2, h=64, w=64))
    assert {'decode.loss_ce', 'decode.loss_slic', 'aux.loss_ce'} <= set(losses)
    (stages, ), _ = aux_forward.call_args
    assert type(stages) is tuple and [t.shape[-1] for t in stages] == [16, 8, 4, 4]
    total.backward()
    assert all(p.grad is not None for p in model.neck.parameters())
    model.eval()
    with torch.no_grad():
        out = model.test_step(_test_batch(64, 64, (64, 64)))[0]
    assert tuple(out.pred_superpixels.shape) == (64, 64)
