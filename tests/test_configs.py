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
    if method == 'fcn16':
        assert m.decode_head.type == 'FCNHead' and 'neck' not in m
        return
    assert m.type == 'SpixEncoderDecoder'
    assert m.data_preprocessor.type == 'SpixSegDataPreProcessor'
    assert m.neck.num_proj == 48 and m.neck.tau == 0.07
    assert tuple(m.neck.levels) == tuple(m.decode_head.levels) == (4, 8)
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
    from mmseg_spixreg.utils.experiment import merge_dataset_cfg
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
