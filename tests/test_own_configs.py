# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""A user's own config, outside the repository: stock ``mmseg::`` models with HCFCNHead.

The config is README's ("Using the plug-in from your own mmseg config") as written.

The paper's neck / loss / head settings come from the installed package
(``mmseg_spixreg.configs.hcfcn``), so a config in any folder builds an HCFCN model without copying
a value: PSPNet and DeepLabV3 as mmseg ships them, loaded with ``Config.fromfile`` from a temporary
folder and built with ``MODELS.build``; a head at the wrong stride (DeepLabV3+) is a clear error.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_spixreg.configs import hcfcn
from tests.utils import REPO_ROOT, make_batch, train_losses

README_SECTION = '### Using the plug-in from your own mmseg config'
README_BASE = 'pspnet_r50-d8.py'
README_LOGITS_HEAD = "dict(type='PSPHead', pool_scales=(1, 2, 3, 6))"


def readme_config():
    """The config of README's "Using the plug-in from your own mmseg config", as written."""
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert README_SECTION in text, f'README.md has no section {README_SECTION!r}'
    section = text[text.index(README_SECTION):]
    start = section.index('```python\n') + len('```python\n')
    block = section[start:section.index('```', start)]
    for part in (README_BASE, README_LOGITS_HEAD):
        assert part in block, f'the README config no longer contains {part!r}'
    return block


# the README's config as written (PSPNet), and with mmseg's DeepLabV3 model and its head
STOCK = {
    'pspnet': (README_BASE, README_LOGITS_HEAD, 'PSPHead'),
    'deeplabv3':
    ('deeplabv3_r50-d8.py', "dict(type='ASPPHead', dilations=(1, 6, 12, 18))", 'ASPPHead'),
}


def own_config(tmp_path, base, logits_head):
    path = tmp_path / 'my_config.py'
    path.write_text(readme_config().replace(README_BASE,
                                            base).replace(README_LOGITS_HEAD, logits_head))
    return Config.fromfile(str(path))


@pytest.mark.parametrize('name', sorted(STOCK))
def test_stock_model_with_hcfcn_head_from_outside_the_repository(tmp_path, monkeypatch, name):
    base, logits_head, head_type = STOCK[name]
    monkeypatch.chdir(tmp_path)  # nothing relative to the repository can resolve
    cfg = own_config(tmp_path, base, logits_head)
    # the merged config: the package's paper values, the stock backbone / auxiliary head
    assert cfg.model.neck == dict(
        hcfcn.assignment_neck, in_channels=[256, 512, 1024, 2048], in_strides=[4, 8, 16, 16])
    assert cfg.model.decode_head.loss_decode == hcfcn.hcfcn_head['loss_decode']
    assert cfg.model.decode_head.loss_slic == dict(hcfcn.slic_loss, loss_weight=0.075)
    assert cfg.model.decode_head.type == 'HCFCNHead'
    assert cfg.model.backbone.type == 'ResNetV1c' and cfg.model.auxiliary_head.type == 'FCNHead'
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.decode_head.logits_head).__name__ == head_type
    assert model.neck.levels == (4, 8)
    # one training step: CE, lambda L_SLIC and the auxiliary CE, all finite
    batch = make_batch(b=2, h=64, w=64)
    losses, total = train_losses(model, batch)
    assert {'decode.loss_ce', 'decode.loss_slic', 'aux.loss_ce'} <= set(losses)
    assert torch.isfinite(total)
    total.backward()
    # inference: class ids and hard superpixels at the input size
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(make_batch(b=1, h=64, w=48)), False)
        out = model.predict(data['inputs'], data['data_samples'])[0]
    assert out.pred_sem_seg.data.shape == (1, 64, 48)
    assert out.pred_superpixels.data.shape == (1, 64, 48)


def test_logits_head_at_another_stride_names_the_stride_16_rule(tmp_path, monkeypatch):
    """DeepLabV3+'s head predicts at stride 4: the error says the logits must be at stride 16."""
    monkeypatch.chdir(tmp_path)
    cfg = own_config(
        tmp_path, 'deeplabv3plus_r50-d8.py',
        "dict(type='DepthwiseSeparableASPPHead', dilations=(1, 6, 12, 18), c1_in_channels=256, "
        'c1_channels=48, in_index=3)')
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    with pytest.raises(
            ValueError,
            match=r'coarse logits must be at twice the stride.*stride 16.*'
            r'DepthwiseSeparableASPPHead'):
        train_losses(model, make_batch(b=2, h=64, w=64))


@pytest.mark.parametrize('config', [
    'hcfcn-deeplabv3_r50-d16_cityscapes_fine.py',
    'hcfcn_r34_cityscapes_fine.py',
])
def test_documented_offline_options_load_no_weights(monkeypatch, config):
    """docs/install.md: ``model.backbone.init_cfg=None model.pretrained=None`` trains from
    scratch for a config on our model base and one on mmseg's (DeepLabV3), where
    ``model.backbone.init_cfg=None`` alone still loads ``open-mmlab://resnet50_v1c``."""
    import mmengine.runner.checkpoint as checkpoint
    loaded = []
    monkeypatch.setattr(checkpoint, 'load_checkpoint',
                        lambda model, filename, *args, **kwargs: loaded.append(filename) or {})

    def init(options):
        loaded.clear()
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
        cfg.merge_from_dict(options)
        init_default_scope('mmseg')
        MODELS.build(cfg.model).init_weights()
        return list(loaded)

    assert init({}), 'the config loads pretrained weights by default'
    if config.startswith('hcfcn-deeplabv3'):
        assert init({'model.backbone.init_cfg': None}) == ['open-mmlab://resnet50_v1c']
    assert init({'model.backbone.init_cfg': None, 'model.pretrained': None}) == []
