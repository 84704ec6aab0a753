# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SpixSegDataPreProcessor: the unnormalised RGB image that L_SLIC reads.
"""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_spixreg.models  # noqa: F401  (registers the models)
from tests.utils import make_batch

# small tensors: one thread (fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_preprocessor_stores_unnormalised_rgb_slic_image():
    init_default_scope('mmseg')
    norm = dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(40, 48))
    pre = MODELS.build(dict(type='SpixSegDataPreProcessor', **norm))
    batch = make_batch(b=2, h=36, w=44)
    data = pre(copy.deepcopy(batch), True)
    assert tuple(data['inputs'].shape) == (2, 3, 40, 48)
    for raw, sample in zip(batch['inputs'], data['data_samples']):
        img = sample.slic_image.data
        assert tuple(img.shape) == (3, 40, 48) and img.dtype == torch.float32
        # RGB order (the pipeline delivers BGR), values 0..255, padding replicates the border
        assert torch.equal(img[:, :36, :44], raw[[2, 1, 0]].float())
        assert torch.equal(img[:, 36:, :44], raw[[2, 1, 0], -1:, :].float().expand(-1, 4, -1))
        assert list(sample.metainfo['padding_size']) == [0, 4, 0, 4]
    # the normalised inputs are what SegDataPreProcessor gives
    stock = MODELS.build(dict(type='SegDataPreProcessor', **norm))
    assert torch.equal(stock(copy.deepcopy(batch), True)['inputs'], data['inputs'])
    # not stored at test time
    test_data = pre(make_batch(b=1, h=32, w=32), False)
    assert 'slic_image' not in test_data['data_samples'][0]
