# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Reliability (issue 7): mixed precision (fp16 / bf16 autocast, ``tools/train.py --amp``) on CPU.

The regularized HCFCN-16 of the CamVid CPU reproduction on two real CamVid crops (112x160), and
mmcv's deformable convolution, which has no bfloat16 CPU kernel (the layer runs in float32 under
autocast).
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS, OPTIM_WRAPPERS

import mmseg_spixreg  # noqa: F401  (registers models, datasets, optimizer wrappers)
from conftest import REPO_ROOT, run_tool
from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d

CAMVID_CFG = osp.join(REPO_ROOT, 'configs', 'camvid_cpu', 'hcfcn_r34_camvid_coarse_cpu.py')
DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


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


def test_cpu_amp_optim_wrapper_is_bfloat16_only():
    model = torch.nn.Linear(3, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='CPUAmpOptimWrapper',
            loss_scale='dynamic',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="supports dtype='bfloat16' only"):
        OPTIM_WRAPPERS.build(
            dict(
                type='CPUAmpOptimWrapper',
                dtype='float16',
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU path of --amp')
def test_train_amp_on_cpu(tmp_path, synthetic_root):
    """``tools/train.py --amp`` without a GPU: bfloat16 autocast, 2 iterations, a checkpoint."""
    work = str(tmp_path / 'amp')
    opts = [f'{k}_dataloader.dataset.data_root={synthetic_root}' for k in ('train', 'val', 'test')]
    opts += [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'model.data_preprocessor.size=(64,64)'
    ]
    proc = run_tool(
        ['tools/train.py', DEMO_CFG, '--amp', '--work-dir', work, '--cfg-options'] + opts,
        env={'OMP_NUM_THREADS': '1'})
    log = proc.stdout + proc.stderr
    assert '--amp without a GPU: CPU mixed precision (bfloat16 autocast' in log
    assert 'decode.loss_slic' in log
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 2
    for k, v in ckpt['state_dict'].items():
        if v.is_floating_point():
            assert v.dtype == torch.float32 and torch.isfinite(v).all(), k
