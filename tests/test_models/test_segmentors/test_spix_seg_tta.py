# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SpixSegTTAModel: test-time augmentation keeps the superpixels of the first view.
"""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from tests.utils import build_model, make_batch

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_tta_with_superpixels():
    init_default_scope('mmseg')
    model = build_model('hcfcn_r34_cityscapes_fine.py').eval()
    tta = MODELS.build(dict(type='SpixSegTTAModel', module=model))
    views = []
    for flip in (False, True):
        view = make_batch(b=1, h=64, w=64, seed=3)  # same image and labels in both views
        view['data_samples'][0].set_metainfo(
            dict(flip=flip, flip_direction='horizontal', img_path='img.png'))
        if flip:
            view['inputs'][0] = view['inputs'][0].flip(-1)
        views.append(view)
    data = dict(
        inputs=[v['inputs'] for v in views], data_samples=[v['data_samples'] for v in views])
    with torch.no_grad():
        out = tta.test_step(data)[0]
        single = model.test_step(copy.deepcopy(views[0]))[0]
    assert tuple(out.pred_sem_seg.shape) == (64, 64)
    # superpixels of the first (un-flipped) view, in the original geometry
    assert torch.equal(out.pred_superpixels.data, single.pred_superpixels.data)
