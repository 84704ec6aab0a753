# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Every config in configs/ loads and its model builds; the paper's hyper-parameters are set."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401
from tests.utils import REPO_ROOT

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
# every config of the repository except the _base_ fragments (top level and sub-folders)
NAMES = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if not osp.relpath(p, CONFIG_DIR).startswith('_base_'))

METHODS = ('fcn16', 'hcfcn16', 'hcfcn')
PAPER = [(m, d, lab) for m in METHODS for d in ('cityscapes', 'suim') for lab in ('fine', 'coarse')]


def load(name):
    init_default_scope('mmseg')
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', name))


def test_paper_configs_exist():
    for method, ds, lab in PAPER:
        assert f'{method}_r34_{ds}_{lab}.py' in NAMES


@pytest.mark.parametrize('name', NAMES)
def test_config_loads_and_model_builds(name):
    cfg = load(name)
    if 'model' not in cfg:
        pytest.skip(f'{name} loads but is a fragment without a model (e.g. a shared schedule)')
    assert cfg.default_scope == 'mmseg'
    model_cfg = cfg.model
    if model_cfg.get('backbone', {}).get('init_cfg'):
        model_cfg.backbone.init_cfg = None  # no download in tests
    model_cfg.pop('pretrained', None)
    model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize('method, ds, lab', PAPER)
def test_paper_hyper_parameters(method, ds, lab):
    cfg = load(f'{method}_r34_{ds}_{lab}.py')
    m = cfg.model
    assert m.backbone.type == 'DCNResNet' and m.backbone.depth == 34
    assert m.backbone.num_stages == 3  # conv5_x removed: output stride 16
    assert m.backbone.norm_cfg.type == 'BN'
    assert m.backbone.init_cfg == dict(type='Pretrained', checkpoint='torchvision://resnet34')
    assert m.decode_head.num_classes == (19 if ds == 'cityscapes' else 8)
    # CE averaged over labelled pixels (coarse labels leave many pixels unlabelled)
    assert m.decode_head.loss_decode.avg_non_ignore is True
    # Adam 5e-4, 512x512 crops + flip, epochs as iterations, best-val checkpoint
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == 5e-4
    steps = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert tuple(steps['RandomCrop']['crop_size']) == (512, 512)
    assert steps['RandomFlip']['prob'] == 0.5
    epochs = 50 if ds == 'cityscapes' else 75
    train_images = 2369 if ds == 'cityscapes' else 1375
    per_epoch = -(-train_images // cfg.train_dataloader.batch_size)
    assert cfg.train_cfg.max_iters == epochs * per_epoch
    assert cfg.train_cfg.val_interval == per_epoch
    # the paper keeps the model with the highest validation accuracy
    assert cfg.default_hooks.checkpoint.save_best == 'aAcc'
    seg_map = cfg.train_dataloader.dataset.data_prefix.seg_map_path
    assert ('oarse' in seg_map) == (lab == 'coarse')
    assert cfg.train_dataloader.batch_size == 8  # the dataset bases' (assumption, design.md)
    if method == 'fcn16':
        assert m.decode_head.type == 'FCNHead' and 'neck' not in m
        assert cfg.tta_model.type == 'SegTTAModel'
        return
    assert m.type == 'SpixEncoderDecoder'
    assert m.data_preprocessor.type == 'SpixSegDataPreProcessor'
    assert cfg.tta_model.type == 'SpixSegTTAModel'
    assert m.neck.embed_dims == 48 and m.neck.tau == 0.07
    # the levels are the neck's alone: the head reads them from the neck's output
    assert tuple(m.neck.levels) == (4, 8) and 'levels' not in m.decode_head
    lam = m.decode_head.loss_slic.loss_weight
    assert m.decode_head.loss_slic.m == 0.0
    if method == 'hcfcn16':
        assert lam == 0.0
    else:
        assert lam == (0.075 if ds == 'cityscapes' else 0.05)


def test_headline_config_is_regularized_hcfcn_on_cityscapes_coarse():
    cfg = load('hcfcn_r34_cityscapes_coarse.py')
    assert cfg.model.decode_head.type == 'HCFCNHead'
    assert cfg.model.decode_head.loss_slic.loss_weight == 0.075
    assert 'gtCoarse' in cfg.train_dataloader.dataset.data_prefix.seg_map_path


def test_slic_only_config():
    cfg = load('hcfcn-sliconly_r34_cityscapes_fine.py')
    assert cfg.model.decode_head.supervised is False
    assert cfg.model.decode_head.loss_slic.loss_weight > 0
    assert cfg.default_hooks.checkpoint.save_best == 'ASA'


@pytest.mark.parametrize('config, coarse_dir', [
    ('_base_/datasets/cityscapes_coarse_1024x512.py', 'gtCoarse/train'),
    ('_base_/datasets/suim_coarse.py', 'ann_dir_coarse_n12/train_val'),
    ('_base_/datasets/camvid_coarse.py', 'data/camvid_coarse/n12/valannot'),
    ('camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py', 'data/camvid_coarse/n12/valannot'),
])
def test_coarse_configs_finetune_on_coarse_val_labels(config, coarse_dir):
    """Coarse-label configs: --finetune adds the val images with COARSE labels, fine for testing."""
    from run_experiment import merge_dataset_cfg
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    val = cfg.val_dataloader.dataset
    ft_val = merge_dataset_cfg(val, cfg.finetune_val_dataset)
    assert ft_val['data_prefix']['seg_map_path'] == coarse_dir
    assert ft_val['data_prefix']['seg_map_path'] != val.data_prefix.seg_map_path
    # same images, data set type and (val) pipeline as the validation split
    assert osp.normpath(osp.join(ft_val['data_root'], ft_val['data_prefix']['img_path'])) == \
        osp.normpath(osp.join(val.data_root, val.data_prefix.img_path))
    assert ft_val['type'] == val.type and ft_val['pipeline'] == val.pipeline
    assert ft_val.get('ann_file') == val.get('ann_file')


def test_paper_values_have_one_home():
    """levels (4, 8), K = 48, tau = 0.07, m = 0 and the head's cross-entropy come from
    mmseg_spixreg/configs/hcfcn.py: _base_/models/hcfcn.py imports them and every HCFCN config's
    merged neck and SLIC loss carry them."""
    from mmseg_spixreg.configs import hcfcn
    home = load('_base_/models/hcfcn.py')
    for key in ('assignment_neck', 'slic_loss', 'hcfcn_head'):
        assert home[key] == getattr(hcfcn, key), key
    assert home.assignment_neck == dict(
        type='AssignmentNeck', levels=(4, 8), embed_dims=48, tau=0.07)
    assert home.slic_loss == dict(type='SLICLoss', m=0.0)
    assert home.hcfcn_head.loss_decode.avg_non_ignore
    assert home.hcfcn_head.loss_slic == dict(type='SLICLoss', m=0.0, loss_weight=0.0)
    for name in NAMES:
        cfg = load(name)
        if cfg.get('model', {}).get('neck', {}).get('type') == 'AssignmentNeck':
            assert cfg.model.neck.levels == (4, 8) and cfg.model.neck.embed_dims == 48
            assert cfg.model.neck.tau == 0.07 and cfg.model.decode_head.loss_slic.m == 0.0


PSP = 'camvid_cpu/{}pspnet_r18-d16_camvid_coarse_cpu.py'
PSP_METHODS = {'': None, 'hcfcn16-': 0.0, 'hcfcn-': 0.075}  # stock, lambda 0, lambda 0.075


def _without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def test_pspnet_r18_d16_camvid_configs():
    """Stock PSPNet-R18 (mmseg's own r18 settings) at output stride 16, and the same with the
    HCFCN neck / head (PSPHead computing the logits) at lambda 0 and 0.075: the three differ in
    the decode head, the neck and the segmentor type only."""
    from mmseg_spixreg.configs import hcfcn
    cfgs = {k: load(PSP.format(k)) for k in PSP_METHODS}
    # mmseg's pspnet_r18-d8 config: what makes the r50 model file an r18 one
    import mmseg
    r18 = Config.fromfile(
        osp.join(
            osp.dirname(mmseg.__file__), '.mim', 'configs', 'pspnet',
            'pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py')).model
    for key, cfg in cfgs.items():
        m = cfg.model
        assert m.pretrained is None  # random init (mmseg's path loads open-mmlab://resnet18_v1c)
        assert m.backbone.type == 'ResNetV1c' and m.backbone.depth == r18.backbone.depth == 18
        assert tuple(m.backbone.strides) == (1, 2, 2, 1)  # output stride 16
        assert tuple(m.backbone.dilations) == (1, 1, 1, 2)
        assert m.backbone.norm_cfg.type == 'BN'
        assert m.auxiliary_head.type == 'FCNHead'
        assert (m.auxiliary_head.in_channels,
                m.auxiliary_head.channels) == (r18.auxiliary_head.in_channels,
                                               r18.auxiliary_head.channels)
        assert m.auxiliary_head.loss_decode.avg_non_ignore is True
        head = m.decode_head
        assert (head.in_channels, head.channels) == (r18.decode_head.in_channels,
                                                     r18.decode_head.channels)
        assert head.num_classes == m.auxiliary_head.num_classes == 11
        assert head.loss_decode.avg_non_ignore is True
        assert m.data_preprocessor.test_cfg == dict(size_divisor=16)
        if PSP_METHODS[key] is None:
            assert m.type == 'EncoderDecoder' and 'neck' not in m
            assert head.type == 'PSPHead' and tuple(head.pool_scales) == (1, 2, 3, 6)
            assert cfg.tta_model.type == 'SegTTAModel'
            continue
        assert m.type == 'SpixEncoderDecoder'
        assert m.data_preprocessor.type == 'SpixSegDataPreProcessor'
        assert cfg.tta_model.type == 'SpixSegTTAModel'
        assert m.neck == dict(
            hcfcn.assignment_neck, in_channels=[64, 128, 256, 512], in_strides=[4, 8, 16, 16])
        assert head.type == 'HCFCNHead' and head.in_index == 3
        assert head.logits_head == dict(type='PSPHead', pool_scales=(1, 2, 3, 6))
        assert head.loss_slic == dict(hcfcn.slic_loss, loss_weight=PSP_METHODS[key])
    # everything but the decode head, the neck and the segmentor / preprocessor type is shared
    stock = cfgs['']
    for key in ('hcfcn16-', 'hcfcn-'):
        cfg = cfgs[key]
        assert cfg.model.backbone == stock.model.backbone
        assert cfg.model.auxiliary_head == stock.model.auxiliary_head
        assert _without(cfg.model.data_preprocessor,
                        'type') == _without(stock.model.data_preprocessor, 'type')
        for k in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
                  'optim_wrapper', 'param_scheduler', 'default_hooks', 'val_evaluator',
                  'test_evaluator'):
            assert cfg[k] == stock[k], k
    # the same data, schedule and selection as the ResNet34 CPU campaign
    fcn16 = load('camvid_cpu/fcn16_r34_camvid_coarse_cpu.py')
    for k in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg', 'optim_wrapper',
              'default_hooks', 'val_evaluator', 'test_evaluator'):
        assert stock[k] == fcn16[k], k
    assert stock.model.data_preprocessor == fcn16.model.data_preprocessor
    # the two HCFCN configs differ in lambda only
    assert _without(cfgs['hcfcn-'].model.decode_head,
                    'loss_slic') == _without(cfgs['hcfcn16-'].model.decode_head, 'loss_slic')
