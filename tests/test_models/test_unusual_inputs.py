# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability: odd input sizes, all-ignore batches, empty superpixels, bad configs.

All on the `make demo` model (regularized HCFCN-16, configs/demo/hcfcn_r34_synthetic_coarse.py)
with random initialisation, on CPU, on small inputs.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from mmseg_spixreg.models.losses import SLICLoss
from mmseg_spixreg.ops import valid_seed_mask
from tests.utils import REPO_ROOT

DEMO_CFG = osp.join(REPO_ROOT, 'configs', 'demo', 'hcfcn_r34_synthetic_coarse.py')
NUM_CLASSES = 5


def demo_model_cfg(**changes):
    init_default_scope('mmseg')
    cfg = Config.fromfile(DEMO_CFG)
    cfg.merge_from_dict({'model.backbone.init_cfg': None, **changes})
    return cfg.model


def build_demo(seed=0, **changes):
    torch.manual_seed(seed)
    model = MODELS.build(demo_model_cfg(**changes))
    model.init_weights()
    return model


def make_batch(sizes, labels='random', seed=0):
    """mmseg data dict: uint8 BGR images of the given (h, w) sizes + SegDataSamples."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        if labels == 'random':
            s.gt_sem_seg = PixelData(data=torch.randint(0, NUM_CLASSES, (1, h, w), generator=g))
        elif labels == 'ignore':
            s.gt_sem_seg = PixelData(data=torch.full((1, h, w), 255, dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def assert_all_finite(model, grads=True):
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), f'non-finite parameter {name}'
        if grads and p.grad is not None:
            assert torch.isfinite(p.grad).all(), f'non-finite gradient of {name}'


# ----------------------------------------------------------------------------------------------
# 1. sizes that are not multiples of the output stride 16


def test_whole_inference_on_100x76_image():
    """test_cfg.size_divisor=16 pads to 112x80; predictions come back at 100x76."""
    model = build_demo().eval()
    with torch.no_grad():
        out = model.test_step(make_batch([(100, 76)], labels=None))[0]
    assert tuple(out.pred_sem_seg.shape) == (100, 76)
    assert tuple(out.seg_logits.data.shape) == (NUM_CLASSES, 100, 76)
    spix = out.pred_superpixels.data
    assert spix.dtype == torch.long and tuple(spix.shape) == (1, 100, 76)
    # ids of the stride-16 seeds of the padded 112x80 input (7 x 5); the padding row is cut off
    assert 0 <= spix.min() and spix.max() < 7 * 5
    assert torch.isfinite(out.seg_logits.data).all()


@pytest.mark.parametrize(
    'crop, stride, size',
    [
        ((50, 70), (30, 45), (100, 76)),  # windows not multiples of 16, overlapping
        ((100, 100), (50, 50), (76, 100)),  # image lower than the crop
        ((128, 128), (64, 64), (60, 44)),  # image smaller than the crop in both directions
    ])
def test_slide_inference_with_odd_windows_and_small_images(crop, stride, size):
    model = build_demo().eval()
    model.test_cfg = Config(dict(mode='slide', crop_size=crop, stride=stride))
    with torch.no_grad():
        out = model.test_step(make_batch([size], labels=None))[0]
    assert tuple(out.pred_sem_seg.shape) == size
    assert tuple(out.pred_superpixels.shape) == size
    assert torch.isfinite(out.seg_logits.data).all()


def test_slide_windows_leaving_gaps_are_rejected_at_build_time():
    """stride > crop_size would leave pixels without prediction (mmseg: a bare assert)."""
    with pytest.raises(
            ValueError,
            match=r'1 <= stride <= crop_size .* got crop_size=\(32, 32\), '
            r'stride=\(48, 48\); set model.test_cfg.stride'):
        MODELS.build(
            demo_model_cfg(
                **{'model.test_cfg': dict(mode='slide', crop_size=(32, 32), stride=(48, 48))}))
    MODELS.build(
        demo_model_cfg(
            **{'model.test_cfg': dict(mode='slide', crop_size=(50, 70), stride=(50, 45))}))


@pytest.mark.parametrize(
    'pad_size, sizes',
    [
        ((100, 100), [(100, 100), (90, 84)]),  # crop 100x100, a smaller image padded to it
        ((99, 77), [(99, 77), (99, 77)]),  # odd sizes
    ])
def test_training_size_not_divisible_by_16_is_padded_transparently(pad_size, sizes):
    """data_preprocessor.size / crop_size not a multiple of 16: the neck pads its features."""
    model = build_demo(**{'model.data_preprocessor.size': pad_size}).train()
    data = model.data_preprocessor(make_batch(sizes), True)
    assert tuple(data['inputs'].shape[-2:]) == pad_size
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'decode.loss_slic'}
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert_all_finite(model)


@pytest.mark.parametrize('height', [5, 9, 13, 17])
def test_training_crops_of_any_height_give_a_finite_slic_loss(height):
    """Heights where ceil(H / 4) cells make H / h round to another integer than the stride 4
    (5 / 2 = 2.5 rounds to 2): the SLIC loss takes the stride from the neck's levels."""
    model = build_demo(**{'model.data_preprocessor.size': (height, 20)}).train()
    data = model.data_preprocessor(make_batch([(height, 20), (height, 20)]), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['decode.loss_slic'])


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_input_image_is_an_error_naming_it(bad):
    """One NaN / inf pixel made every logit NaN and the prediction class 0 everywhere."""
    model = build_demo().eval()
    batch = make_batch([(32, 32), (32, 32)])
    batch['inputs'] = [img.float() for img in batch['inputs']]
    batch['inputs'][1][0, 3, 4] = bad
    batch['data_samples'][1].set_metainfo({'img_path': 'data/img_dir/val/frame_7.png'})
    for training in (False, True):
        with pytest.raises(ValueError, match='input image data/img_dir/val/frame_7.png has 1 NaN'):
            model.data_preprocessor(batch, training)


# ----------------------------------------------------------------------------------------------
# 2. a batch without any labelled pixel; empty superpixels


def test_all_ignore_batch_trains_without_nan():
    """Coarse labels can leave a whole crop unlabelled: CE = 0, L_SLIC finite, step runs."""
    model = build_demo(**{'model.data_preprocessor.size': (64, 64)}).train()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=5e-4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(2):
        batch = make_batch([(64, 64), (64, 64)], labels='ignore', seed=step)
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        assert losses['decode.loss_ce'].item() == 0.0
        assert math.isfinite(losses['decode.loss_slic'].item())
        assert losses['decode.loss_slic'].item() > 0
        total, log_vars = model.parse_losses(losses)
        assert all(math.isfinite(v) for v in log_vars.values()), log_vars
        optim.backward(total)
        assert_all_finite(model)
        # the SLIC term alone still trains the assignment projections
        assert model.neck.assigners[0].fine_proj.weight.grad.abs().sum() > 0
        optim.step()
        optim.zero_grad()
    assert_all_finite(model, grads=False)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if 'neck' in k)
    for k, v in after.items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k


def _one_hot_assignment(b, h, w, choose):
    """(b, 9, h, w) one-hot assignment: channel ``choose(y, x)`` where that seed exists."""
    logits = torch.full((b, 9, h, w), -1e4)
    valid = valid_seed_mask(h, w)[0]
    for y in range(h):
        for x in range(w):
            j = choose(y, x)
            logits[:, j if valid[j, y, x] else 4, y, x] = 0.0
    return logits


def test_slic_loss_with_empty_superpixels_and_no_valid_pixel():
    """q(x, A) with empty superpixels (eps) and an all-padding image: finite loss and grads."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (2, 3, 64, 64), generator=g).float()
    # every stride-4 pixel picks its up-left seed: the last row/column of seeds stays empty
    logits4 = _one_hot_assignment(2, 16, 16, lambda y, x: 0).requires_grad_()
    logits8 = _one_hot_assignment(2, 8, 8, lambda y, x: 0).requires_grad_()
    loss_fn = SLICLoss(loss_weight=0.075, m=1.0)
    for valid in (None, torch.zeros(2, 64, 64, dtype=torch.bool)):
        a4, a8 = torch.softmax(logits4, 1), torch.softmax(logits8, 1)
        assert (a8.sum(dim=(0, 2, 3)) == 0).any()  # some seed channels are never used
        loss = loss_fn(image, [a4, a8], (16, 16), valid)
        assert torch.isfinite(loss)
        if valid is not None:
            assert loss.item() == 0.0  # nothing valid: no reconstruction error to average
        loss.backward()
        assert torch.isfinite(logits4.grad).all() and torch.isfinite(logits8.grad).all()
        logits4.grad, logits8.grad = None, None
    # a constant image is reconstructed exactly by the regular grid (colour term): the eps
    # under the norm keeps the gradient of ||x - q|| = 0 finite
    grid4 = _one_hot_assignment(2, 16, 16, lambda y, x: 4).requires_grad_()
    grid8 = _one_hot_assignment(2, 8, 8, lambda y, x: 4).requires_grad_()
    loss = SLICLoss(
        loss_weight=0.075,
        m=0.0)(torch.full_like(image, 128.0),
               [torch.softmax(grid4, 1), torch.softmax(grid8, 1)], (16, 16))
    assert loss.item() < 1e-3
    loss.backward()
    assert torch.isfinite(grid4.grad).all() and torch.isfinite(grid8.grad).all()


# ----------------------------------------------------------------------------------------------
# 4. bad config values: ValueError at build time, naming the parameter and the value


@pytest.mark.parametrize(
    'changes, match',
    [
        ({
            'model.neck.embed_dims': 0
        }, r'embed_dims \(K\) must be a positive int, got 0'),
        ({
            'model.neck.embed_dims': -48
        }, r'embed_dims \(K\) must be a positive int, got -48'),
        ({
            'model.neck.tau': 0.0
        }, 'tau must be a positive finite number, got 0.0'),
        ({
            'model.neck.tau': -0.07
        }, 'tau must be a positive finite number, got -0.07'),
        ({
            'model.neck.tau': float('nan')
        }, 'tau must be a positive finite number, got nan'),
        ({
            'model.decode_head.loss_slic.loss_weight': -0.075
        }, r'loss_weight \(lambda\) must be >= 0, got -0.075'),
        ({
            'model.decode_head.loss_slic.m': -1.0
        }, 'm must be >= 0, got -1.0'),
        ({
            'model.neck.levels': (8, 16)
        }, 'unknown assignment level 16'),
        ({
            'model.neck.levels': (2, 4)
        }, 'unknown assignment level 2'),
        ({
            'model.neck.levels': (4, 16)
        }, 'consecutive strides'),
        # values that passed the checks above but gave NaN / inf or silently other values
        ({
            'model.neck.tau': 1e-300
        }, r'tau must be a positive finite number, got 1e-300 \(tau and 1 / tau finite in float32'),
        ({
            'model.neck.tau': 1e39
        }, 'tau must be a positive finite number, got 1e[+]?39'),
        ({
            'model.decode_head.loss_slic.m': 1e39
        }, r'm must be >= 0, got 1e[+]?39 \(a finite float32 number\)'),
        ({
            'model.decode_head.loss_slic.loss_weight': 1e39
        }, r'loss_weight \(lambda\) must be >= 0, got 1e[+]?39'),
        ({
            'model.decode_head.loss_slic.loss_weight': float('nan')
        }, r'loss_weight \(lambda\) must be >= 0, got nan'),
        ({
            'model.decode_head.loss_slic.eps': -1.0
        }, 'eps must be > 0, got -1.0'),
        ({
            'model.decode_head.loss_slic.eps': float('nan')
        }, 'eps must be > 0, got nan'),
        ({
            'model.neck.levels': '48'
        },
         "levels must be a list or tuple of int strides, finest first, e.g. \\(4, 8\\), got '48'"),
        ({
            'model.neck.levels': (4.9, 8.9)
        }, r'levels must be a list or tuple of int strides.*got \(4.9, 8.9\)'),
    ])
def test_bad_config_values_raise_at_build_time(changes, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(demo_model_cfg(**changes))


def test_good_config_still_builds():
    model = MODELS.build(demo_model_cfg())
    # the levels are the neck's alone; the head reads them from the neck's output
    assert model.neck.levels == (4, 8) and not hasattr(model.decode_head, 'levels')
    assert model.decode_head.loss_slic.loss_weight == pytest.approx(0.075)
    assert model.neck.embed_dims == 48 and model.neck.tau == pytest.approx(0.07)
    assert model.decode_head.loss_slic.m == 0.0
