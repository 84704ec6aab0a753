# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/deployment/pytorch2onnx.py end to end: export + --verify (onnxruntime vs PyTorch's
``model.test_step``) for FCN-16, regularized HCFCN-16, stock PSPNet-R18 and the same with the
HCFCN head (CamVid CPU configs, 11 classes) and the DeepLabV3 swap config, static at CamVid's
test size (120x160, padded to a multiple of 16 inside the graph) and dynamic at two sizes (the
PSPNet models: static only, ``--dynamic`` is a clear error); and the clear errors for what
cannot be exported."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.model import BaseTTAModel

from mmseg_spixreg.deployment import check_dynamic_exportable, check_exportable
from tests.test_deployment.deploy_utils import random_checkpoint
from tests.utils import REPO_ROOT, run_tool

onnx = pytest.importorskip('onnx', reason='requirements/deploy.txt not installed')
pytest.importorskip('onnxruntime', reason='requirements/deploy.txt not installed')
pytest.importorskip('onnxscript', reason='requirements/deploy.txt not installed')

TOOL = 'tools/deployment/pytorch2onnx.py'
# the lambda = 0 configs (hcfcn16_r34..., hcfcn16-pspnet...) differ from the regularized ones
# only in loss_slic.loss_weight (test_lambda_zero_configs_export_the_same_model): the same graph
CONFIGS = {
    'fcn16': 'configs/camvid_cpu/fcn16_r34_camvid_coarse_cpu.py',
    'hcfcn': 'configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py',
    'deeplabv3': 'configs/hcfcn-deeplabv3_r50-d16_cityscapes_fine.py',
    'pspnet': 'configs/camvid_cpu/pspnet_r18-d16_camvid_coarse_cpu.py',
    'hcfcn-pspnet': 'configs/camvid_cpu/hcfcn-pspnet_r18-d16_camvid_coarse_cpu.py',
}
# stock models (no superpixels: one output) and the models with the DCNv2 ResNet34 backbone
STOCK = ('fcn16', 'pspnet')
DCN = ('fcn16', 'hcfcn')
# PSPHead's pyramid pooling (adaptive pooling to 2x2, 3x3, 6x6 bins): static export only
STATIC_ONLY = ('pspnet', 'hcfcn-pspnet')
VERIFY = re.compile(r'verify (\d+)x(\d+): max \|logit diff\| (\S+) \(max \|logit\| (\S+)\), '
                    r'argmax agreement (\S+) %, identical superpixels (\S+)(?: %)?: (PASS|FAIL)')


class _Checkpoints(dict):
    """config key -> path of its random checkpoint, saved on first use."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, key):
        path = str(self.root / f'{key}.pth')
        random_checkpoint(CONFIGS[key], path)
        self[key] = path
        return path


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    return _Checkpoints(tmp_path_factory.mktemp('ckpt'))


def export(key, checkpoints, out, *extra):
    args = [TOOL, CONFIGS[key], checkpoints[key], '--out', str(out), '--verify', *extra]
    proc = run_tool(args, env={'OMP_NUM_THREADS': '1'})
    reports = [m.groups() for m in VERIFY.finditer(proc.stdout)]
    print(proc.stdout)
    return reports


def check_reports(reports, shapes, with_superpixels):
    assert [(int(r[0]), int(r[1])) for r in reports] == shapes
    for h, w, diff, max_logit, agreement, spix, verdict in reports:
        assert float(diff) <= 1e-4, (h, w, diff)
        assert float(agreement) >= 99.9
        assert float(max_logit) > 0.1  # not a degenerate all-zero model
        assert spix == ('100.000' if with_superpixels else 'n/a')
        assert verdict == 'PASS'


def check_model(path, key, dynamic):
    model = onnx.load(str(path))
    assert model.ir_version <= 13
    assert {(o.domain, o.version) for o in model.opset_import} >= {('', 19)}
    ops = [n.op_type for n in model.graph.node]
    # FCN-16 / HCFCN-16: the DCNv2 3x3 and shortcut convs of conv3_x and conv4_x
    assert ops.count('DeformConv') == (4 if key in DCN else 0)
    assert not any(n.domain not in ('', 'ai.onnx') for n in model.graph.node)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['channel_order'] == 'RGB'
    outputs = [o.name for o in model.graph.output]
    assert outputs == (['logits'] if key in STOCK else ['logits', 'superpixels'])
    assert json.loads(meta['outputs']) == outputs
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if dynamic:
        assert all(isinstance(d, str) for d in (dims[0], dims[2], dims[3])), dims
    else:
        assert dims == [1, 3, 120, 160]


@pytest.mark.parametrize('pair', [('hcfcn16_r34', 'hcfcn_r34'),
                                  ('hcfcn16-pspnet_r18-d16', 'hcfcn-pspnet_r18-d16')])
def test_lambda_zero_configs_export_the_same_model(pair):
    """The export covers a lambda = 0 config through its regularized twin: their merged models
    differ in the SLIC loss weight alone, which the exported inference graph does not hold."""
    from mmengine.config import Config
    zero, reg = (
        Config.fromfile(f'configs/camvid_cpu/{name}_camvid_coarse_cpu.py').model for name in pair)
    assert zero.decode_head.loss_slic.loss_weight == 0
    assert reg.decode_head.loss_slic.loss_weight > 0
    zero.decode_head.loss_slic.loss_weight = reg.decode_head.loss_slic.loss_weight
    assert zero.to_dict() == reg.to_dict()


@pytest.mark.parametrize('key', list(CONFIGS))
def test_export_and_verify_static_and_dynamic(key, checkpoints, tmp_path):
    with_spix = key not in STOCK
    static = tmp_path / 'static.onnx'
    check_reports(
        export(key, checkpoints, static, '--shape', '120', '160'), [(120, 160)], with_spix)
    check_model(static, key, dynamic=False)
    dynamic = tmp_path / 'dynamic.onnx'
    if key in STATIC_ONLY:
        # the traced graph would keep the pooling bins of the example shape: refused, nothing
        # written (before the check, the dynamic model failed in onnxruntime at the second size)
        err = failed_tool(CONFIGS[key], checkpoints[key], '--out', str(dynamic), '--dynamic',
                          '--shape', '96', '128')
        assert "--dynamic: layer 'decode_head." in err and 'AdaptiveAvgPool2d' in err
        assert 'without --dynamic' in err
        assert not osp.exists(dynamic)
        return
    reports = export(key, checkpoints, dynamic, '--shape', '96', '128', '--dynamic')
    check_reports(reports, [(96, 128), (128, 192)], with_spix)
    check_model(dynamic, key, dynamic=True)


def failed_tool(*args):
    proc = subprocess.run([sys.executable, TOOL, *args],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode != 0
    return proc.stderr


def test_clear_errors_for_what_cannot_be_exported(checkpoints, tmp_path):
    ckpt, cfg, out = checkpoints['hcfcn'], CONFIGS['hcfcn'], str(tmp_path / 'x.onnx')
    err = failed_tool(cfg, ckpt, '--out', out, '--cfg-options', 'model.test_cfg.mode=slide',
                      'model.test_cfg.crop_size=(64,64)', 'model.test_cfg.stride=(32,32)')
    assert "model.test_cfg.mode='slide' cannot be exported" in err
    assert 'model.test_cfg.mode=whole' in err
    assert '--tta: test-time augmentation cannot be exported' in failed_tool(
        cfg, ckpt, '--out', out, '--tta')
    assert 'needs opset >= 19' in failed_tool(cfg, ckpt, '--out', out, '--opset', '17')
    assert 'must be multiples of 16' in failed_tool(cfg, ckpt, '--out', out, '--dynamic', '--shape',
                                                    '120', '160')
    assert not osp.exists(out)


def test_api_errors_name_the_problem():
    from mmcv.ops import DeformConv2dPack  # DCNv1: no ONNX translation here
    model = torch.nn.Module()
    model.encode_decode, model.data_preprocessor = None, None
    model.layer = DeformConv2dPack(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match='layer .*DeformConv2dPack.* is an mmcv C\\+\\+ op'):
        check_exportable(model)
    # mmcv's own DCNv2 calls its C++ kernel through an autograd function: refused, naming ours
    from mmcv.ops import ModulatedDeformConv2dPack
    model.layer = ModulatedDeformConv2dPack(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match='ModulatedDeformConv2dPack.*ZeroInitModulatedDeform'):
        check_exportable(model)

    class Segmentor(torch.nn.Module):

        def test_step(self, data):
            return data

    class TTA(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return data_samples_list[0]

    with pytest.raises(ValueError, match='test-time augmentation'):
        check_exportable(TTA(module=Segmentor()))


def test_dynamic_export_refuses_size_dependent_pooling():
    """Adaptive pooling to a grid > 1x1 (PSPNet's pyramid) cannot be dynamic; global pooling
    (output size 1, DeepLabV3's image pool) can."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.AdaptiveAvgPool2d(1))
    check_dynamic_exportable(model)
    check_dynamic_exportable(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((1, None))))
    for pool in (torch.nn.AdaptiveAvgPool2d(2), torch.nn.AdaptiveMaxPool2d((1, 3))):
        with pytest.raises(ValueError, match=r"layer '1' \(Adaptive\w+Pool2d, output size"):
            check_dynamic_exportable(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), pool))
