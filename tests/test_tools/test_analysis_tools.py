# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/analysis_tools/get_flops.py (every config; DCNv2 and the superpixel ops counted) and
tools/analysis_tools/benchmark.py (images/s with any number of images)."""
import glob
import importlib.util
import json
import math
import os.path as osp
import re

import pytest
from mmcv.ops import ModulatedDeformConv2d
from mmengine.config import Config

from tests.utils import DEMO_CFG, REPO_ROOT, run_tool, save_random_checkpoint

CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO_ROOT, 'configs'))
    for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).endswith('_schedule.py'))
SUPERPIXEL_ROWS = ('superpixel upsample', 'seed softmax (eq. 1)')


def _tool(name):
    path = osp.join(REPO_ROOT, 'tools', 'analysis_tools', name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def get_flops():
    return _tool('get_flops')


def _count(get_flops, config, shape=(64, 64)):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    model = get_flops.build_model(cfg)
    return model, get_flops.count_flops(model, (3, ) + shape)


@pytest.mark.parametrize('config', CONFIGS)
def test_get_flops_counts_every_config(get_flops, config):
    model, result = _count(get_flops, config)
    assert result['flops'] > 0 and result['params'] == sum(p.numel() for p in model.parameters())
    # every custom autograd function of the trace has a handle
    assert not [op for op in result['not_counted'] if 'PythonOp' in op], result['not_counted']
    rows = result['by_operator']
    has_dcn = any(isinstance(m, ModulatedDeformConv2d) for m in model.modules())
    assert ('DCNv2 (mmcv)' in rows) == has_dcn, rows
    has_spix = hasattr(model.decode_head, 'predict_superpixels')
    # the upsampling, and the assignments by the fused softmax or by the correlation alone
    assert (rows.get('superpixel upsample', 0) > 0) == has_spix, rows
    assignment = rows.get('seed softmax (eq. 1)', 0) + rows.get('neighbour correlation', 0)
    assert (assignment > 0) == has_spix, rows


def test_get_flops_values_follow_the_stated_formulas(get_flops):
    """HCFCN-16 (19 classes, K = 48) at 64x64: the logits are upsampled 4x4 -> 8x8 -> 16x16, the
    neck's softmax runs on the 16x16 (A4) and 8x8 (A8) grids; DCNv2 = conv + 5 per sample."""
    model, result = _count(get_flops, 'hcfcn16_r34_cityscapes_fine.py')
    rows = result['by_operator']
    assert rows['superpixel upsample'] == 19 * 9 * (8 * 8 + 16 * 16)
    assert rows['seed softmax (eq. 1)'] == (48 + 3) * 9 * (16 * 16 + 8 * 8)
    expected_dcn = 0
    hooks = []

    def hook(module, inputs, output):
        nonlocal expected_dcn
        c_out, c_in, kh, kw = module.weight.shape
        n, _, h, w = output.shape
        expected_dcn += n * c_out * h * w * c_in * kh * kw + 5 * n * inputs[0].shape[1] * kh * \
            kw * h * w

    for m in model.modules():
        if isinstance(m, ModulatedDeformConv2d):
            hooks.append(m.register_forward_hook(hook))
    get_flops.count_flops(model, (3, 64, 64))
    for h in hooks:
        h.remove()
    assert len(hooks) > 0 and rows['DCNv2 (mmcv)'] == expected_dcn
    # the regularizer adds no inference FLOPs; FCN-16 has neither superpixel op
    _, fcn = _count(get_flops, 'fcn16_r34_cityscapes_fine.py')
    assert not set(SUPERPIXEL_ROWS) & set(fcn['by_operator'])
    assert fcn['by_operator']['DCNv2 (mmcv)'] == rows['DCNv2 (mmcv)']


def test_get_flops_command_line():
    proc = run_tool([
        'tools/analysis_tools/get_flops.py', 'configs/hcfcn_r34_cityscapes_coarse.py', '--shape',
        '64', '96'
    ],
                    timeout=300)
    assert 'Input shape: (64, 96)' in proc.stdout
    assert re.search(r'Flops: [\d.]+[KMGT]', proc.stdout), proc.stdout
    for row in ('DCNv2 (mmcv)', ) + SUPERPIXEL_ROWS:
        assert row in proc.stdout, proc.stdout


@pytest.mark.parametrize('num_images', [3, 7])
def test_benchmark_with_fewer_images_than_asked(tmp_path, synthetic_root, num_images):
    """4 test images: the loader is cycled until warm-up + num_images have run; finite img/s."""
    from mmseg_spixreg.utils.synthetic_data import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
    config = osp.join(REPO_ROOT, DEMO_CFG)
    ckpt = str(tmp_path / 'random.pth')
    save_random_checkpoint(config, ckpt, dict(classes=SYNTHETIC_CLASSES, palette=SYNTHETIC_PALETTE))
    proc = run_tool([
        'tools/analysis_tools/benchmark.py', config, ckpt, '--num-images',
        str(num_images), '--num-warmup', '2', '--log-interval', '2', '--work-dir',
        str(tmp_path / 'bench'), '--cfg-options',
        f'test_dataloader.dataset.data_root={synthetic_root}'
    ],
                    timeout=300)
    fps = float(re.search(r'Overall fps: ([\d.]+) img / s', proc.stdout).group(1))
    assert math.isfinite(fps) and fps > 0
    assert f'Done image [{2:<3}/ {num_images}]' in proc.stdout
    (json_file, ) = glob.glob(str(tmp_path / 'bench' / 'fps_*.json'))
    with open(json_file) as f:
        written = json.load(f)
    assert written['average_fps'] == round(fps, 2) and written['num_images'] == num_images
