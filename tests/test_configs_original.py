# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""configs/original/: every option of the thesis's own code is on in the merged config, the
models build with them, and a CamVid CPU config trains and tests through tools/*.py."""
import glob
import json
import os.path as osp
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401
from tests.utils import CAMVID_ROOT, REPO_ROOT, run_tool

ORIGINAL_DIR = osp.join(REPO_ROOT, 'configs', 'original')
NAMES = sorted(osp.basename(p) for p in glob.glob(osp.join(ORIGINAL_DIR, '*.py')))
PAPER_CONFIG = {
    **{
        f'{m}_r34_{d}_coarse_original.py': f'{m}_r34_{d}_coarse.py'
        for m in ('fcn16', 'hcfcn16', 'hcfcn')
        for d in ('cityscapes', 'suim')
    },
    **{
        f'{m}_r34_camvid_cpu_original.py': f'camvid_cpu/{m}_r34_camvid_coarse_cpu.py'
        for m in ('fcn16', 'hcfcn16', 'hcfcn')
    },
}


def load(path):
    init_default_scope('mmseg')
    return Config.fromfile(path)


def test_every_method_and_data_set_has_an_original_config():
    assert NAMES == sorted(PAPER_CONFIG)


@pytest.mark.parametrize('name', NAMES)
def test_original_options_in_the_merged_config(name):
    cfg = load(osp.join(ORIGINAL_DIR, name))
    paper = load(osp.join(REPO_ROOT, 'configs', PAPER_CONFIG[name]))
    m = cfg.model
    # raw RGB / 255, random init, the original's DCN
    assert m.data_preprocessor.mean == [0.0, 0.0, 0.0]
    assert m.data_preprocessor.std == [255.0, 255.0, 255.0]
    assert m.data_preprocessor.type == paper.model.data_preprocessor.type
    assert m.backbone.init_cfg is None
    assert (m.backbone.dcn_shortcut_kernel_size, m.backbone.dcn_shortcut_bias,
            m.backbone.dcn_modulation) == (3, True, 'sigmoid')
    # 3x3 conv 256 -> 64 + BN + ReLU, dropout 0.1, 1x1
    head = m.decode_head
    assert (head.num_convs, head.kernel_size, head.channels, head.dropout_ratio) == (1, 3, 64, 0.1)
    assert head.num_classes == paper.model.decode_head.num_classes
    if head.type == 'HCFCNHead':
        assert m.neck.similarity == 'dot'
        assert head.loss_slic.protocol == 'original'
        # lambda as in the paper config (0 for HCFCN-16)
        assert head.loss_slic.loss_weight == paper.model.decode_head.loss_slic.loss_weight
    # everything else of the paper config is kept: schedule, crop, best-accuracy checkpoint
    assert cfg.optim_wrapper == paper.optim_wrapper and cfg.train_cfg == paper.train_cfg
    assert cfg.default_hooks.checkpoint.save_best == 'aAcc'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        metric = [e for e in evaluator if e.type == 'SuperpixelBoundaryMetric']
        assert metric and metric[0].protocol == 'original'
    # coarse labels: Cityscapes' own gtCoarse; SUIM and CamVid made on the fly from the fine
    # labels, after the random crop and flip
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    seg_map = cfg.train_dataloader.dataset.data_prefix.seg_map_path
    if 'cityscapes' in name:
        assert 'CoarsenLabels' not in steps and 'gtCoarse' in seg_map
        assert cfg.train_dataloader.dataset.pipeline == paper.train_dataloader.dataset.pipeline
    else:
        assert steps[-3:] == ['RandomFlip', 'CoarsenLabels', 'PackSegInputs']
        assert steps.index('RandomCrop') < steps.index('CoarsenLabels')
        coarsen = cfg.train_dataloader.dataset.pipeline[-2]
        assert coarsen.protocol == 'original'
        assert coarsen.erode == (4 if 'camvid_cpu' in name else 12)
        assert 'oarse' not in seg_map
        assert steps[:-1] == [t['type'] for t in paper.train_dataloader.dataset.pipeline][:-1] \
            + ['CoarsenLabels']


@pytest.mark.parametrize(
    'name', ['fcn16_r34_suim_coarse_original.py', 'hcfcn_r34_cityscapes_coarse_original.py'])
def test_original_models_build_with_the_original_classifier(name):
    cfg = load(osp.join(ORIGINAL_DIR, name))
    model = MODELS.build(cfg.model)
    head = model.decode_head
    conv = head.convs[0]
    assert conv.conv.kernel_size == (3, 3)
    assert (conv.conv.in_channels, conv.conv.out_channels) == (256, 64)
    assert type(conv.bn).__name__ == 'BatchNorm2d' and conv.activate is not None
    assert head.dropout.p == 0.1
    assert head.conv_seg.kernel_size == (1, 1) and head.conv_seg.in_channels == 64
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64) * 255, mode='tensor')
    assert out.shape[1] == cfg.model.decode_head.num_classes


# the synthetic data set (64x64, 5 classes) in place of CamVid where CamVid is absent
SYNTHETIC_OVERRIDE = """
_base_ = ['{config}']
data = dict(type='BaseSegDataset', data_root='{root}', img_suffix='.png', seg_map_suffix='.png',
            metainfo=dict(classes=tuple('abcdefghijk')))
train_dataloader = dict(dataset=dict(
    data, _delete_=True, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
    pipeline=_base_.train_dataloader.dataset.pipeline))
val_dataloader = dict(dataset=dict(
    data, _delete_=True, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
    pipeline=_base_.val_dataloader.dataset.pipeline))
test_dataloader = val_dataloader
"""


def test_camvid_cpu_original_trains_and_tests_through_the_tools(tmp_path, request):
    """Two iterations of the regularized HCFCN-16 (every original option) through
    tools/train.py, then tools/test.py reports the *_orig keys (CamVid where it exists, else
    the generated data set)."""
    config = osp.join('configs', 'original', 'hcfcn_r34_camvid_cpu_original.py')
    if osp.isdir(osp.join(CAMVID_ROOT, 'val')):
        # two frames each: the end-of-training validation and the test run
        train_extra = ['val_dataloader.dataset.indices=[0,1]']
        test_extra = ['--cfg-options', 'test_dataloader.dataset.indices=[50,51]']
    else:
        root = request.getfixturevalue('synthetic_root')
        override = tmp_path / 'original_synthetic.py'
        override.write_text(
            textwrap.dedent(SYNTHETIC_OVERRIDE).format(
                config=osp.join(REPO_ROOT, config), root=root))
        config, train_extra, test_extra = str(override), [], []
    work = str(tmp_path / 'work')
    run_tool([
        'tools/train.py', config, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
        'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1', 'randomness.seed=0'
    ] + train_extra)
    log = open(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))[0]).read()
    rows = [json.loads(line) for line in log.splitlines()]
    assert any('decode.loss_slic' in row for row in rows), rows
    ckpt = osp.join(work, 'iter_2.pth')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', work] + test_extra)
    results = glob.glob(osp.join(work, '*', '*.json'))
    metrics = json.loads(open(sorted(results)[-1]).read().splitlines()[-1])
    for key in ('PixAcc', 'BR', 'BR_paper', 'BR_orig', 'PixAcc_orig', 'ASA', 'ASA_orig'):
        assert key in metrics, metrics
        assert 0.0 <= metrics[key] <= 100.0


def _generated(tmp_path, data_set):
    """A tiny converted data set in the configs' layout: SUIM (16x12 after halving) or
    Cityscapes (32x16), from the generators of tests/utils.py through the real converters."""
    import cityscapes_coarse  # tools/dataset_converters (setup.cfg: pythonpath)
    import suim
    from tests.utils import make_cityscapes, make_suim
    src, out = str(tmp_path / 'raw'), str(tmp_path / data_set)
    if data_set == 'suim':
        make_suim(src, n_train_val=6, n_test=2)
        assert suim.main([src, out, '--num-val', '2', '--nproc', '1']) == 0
    else:
        make_cityscapes(src)
        assert cityscapes_coarse.main([src, out, '--width', '32', '--height', '16', '--nproc',
                                       '1']) == 0
    return out


@pytest.mark.parametrize(
    'name', ['hcfcn_r34_suim_coarse_original.py', 'fcn16_r34_cityscapes_coarse_original.py'])
def test_paper_data_set_originals_train_and_test(tmp_path, name):
    """Two iterations through tools/train.py and a tools/test.py run on generated data sets
    (the real ones are not on the test machines); sizes shrunk with --cfg-options only."""
    root = _generated(tmp_path, 'suim' if 'suim' in name else 'cityscapes')
    config = osp.join('configs', 'original', name)
    options = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    options += [f'{k}_dataloader.num_workers=0' for k in ('train', 'val', 'test')]
    options += [f'{k}_dataloader.persistent_workers=False' for k in ('train', 'val', 'test')]
    options += ['model.data_preprocessor.size=(32,32)', 'train_dataloader.batch_size=2']
    if 'cityscapes' in name:  # its pipelines resize to 1024x512: to the generated 32x16
        options += ['train_dataloader.dataset.pipeline.3.scale=(32,16)'] + [
            f'{k}_dataloader.dataset.pipeline.1.scale=(32,16)' for k in ('val', 'test')
        ]
    work = str(tmp_path / 'work')
    run_tool(['tools/train.py', config, '--work-dir', work, '--cfg-options'] + options + [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1'
    ])
    run_tool([
        'tools/test.py', config,
        osp.join(work, 'iter_2.pth'), '--work-dir', work, '--cfg-options'
    ] + options)
    results = glob.glob(osp.join(work, '*', '*.json'))
    metrics = json.loads(open(sorted(results)[-1]).read().splitlines()[-1])
    keys = ['PixAcc', 'BR', 'BR_paper', 'BR_orig', 'PixAcc_orig']
    keys += ['ASA', 'ASA_orig'] if 'hcfcn' in name else []
    for key in keys:
        assert key in metrics, metrics
