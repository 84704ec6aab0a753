# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability: mixed precision (fp16 / bf16 autocast) of the whole model on CPU.

The regularized HCFCN-16 of the CamVid CPU reproduction on two real CamVid crops (112x160). The
deformable convolution under autocast: tests/test_models/test_utils/test_deform_conv.py; the CPU
optimizer wrapper: tests/test_engine/test_optimizers; ``tools/train.py --amp``:
tests/test_tools/test_train.py.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmseg_spixreg  # noqa: F401  (registers models and datasets)
from tests.utils import REPO_ROOT

CAMVID_CFG = osp.join(REPO_ROOT, 'configs', 'camvid_cpu', 'hcfcn_r34_camvid_coarse_cpu.py')


@pytest.fixture(scope='module')
def camvid_batch(camvid_root):
    """Two CamVid training images through the CPU reproduction's train pipeline (112x160)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(CAMVID_CFG)
    ds = DATASETS.build(
        dict(
            type='CamVidDataset',
            data_root=camvid_root,
            data_prefix=dict(img_path='train', seg_map_path='trainannot'),
            indices=[0, 100],
            pipeline=cfg.train_pipeline))
    samples = [ds[0], ds[1]]
    return dict(
        inputs=[s['inputs'] for s in samples], data_samples=[s['data_samples'] for s in samples])


def _loss_and_grads(model, batch, dtype):
    model.zero_grad()
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    torch.manual_seed(1)  # the same dropout mask in every precision
    with torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        feats = model.extract_feat(data['inputs'])
        losses = model.decode_head.loss(feats, data['data_samples'], model.train_cfg)
        total, _ = model.parse_losses(losses)
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return losses, feats.assignments, grads


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
def test_autocast_forward_backward_finite_on_camvid(camvid_batch, dtype):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CAMVID_CFG).model).train()
    assert model.decode_head.loss_slic.loss_weight == pytest.approx(0.075)
    ref_losses, _, _ = _loss_and_grads(model, camvid_batch, None)
    losses, assignments, grads = _loss_and_grads(model, camvid_batch, dtype)
    for key in ('loss_ce', 'loss_slic'):
        assert torch.isfinite(losses[key]), key
        torch.testing.assert_close(
            losses[key].float(), ref_losses[key], rtol=0.05, atol=0.02, msg=key)
    # the cosine / temperature softmax (exp(cos / 0.07) up to e^14.3) runs in float32
    for a in assignments:
        assert a.dtype == torch.float32 and torch.isfinite(a).all()
        torch.testing.assert_close(a.sum(dim=1), torch.ones_like(a[:, 0]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert set(grads) == set(trainable)
    for name, g in grads.items():
        assert torch.isfinite(g).all(), name
