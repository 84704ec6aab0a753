# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""mmseg's inference APIs on the project's configs: init_model + inference_model, MMSegInferencer,
show_result_pyplot (demo/image_demo.py: tests/test_tools/test_image_demo.py).

Every config family (FCN-16, HCFCN-16, regularized HCFCN-16, the DeepLabV3 swap) is the real
config with random weights, saved as a checkpoint with dataset meta the way mmengine saves them;
the only change is the test pipeline's Resize scale, capped at the test image's size (100x76,
not a multiple of 16) so that CPU inference stays fast.
"""
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.apis import MMSegInferencer, inference_model, init_model, show_result_pyplot
from mmseg.apis.utils import _preprare_data
from mmseg.datasets import CityscapesDataset
from mmseg.structures import SegDataSample

import mmseg_spixreg  # noqa: F401
from mmseg_spixreg.visualization import draw_superpixel_boundaries
from tests.utils import REPO_ROOT, TEST_IMAGE_SIZE, generated_image, save_random_checkpoint

H, W = TEST_IMAGE_SIZE  # the main test image (fixture ``images``), not a multiple of 16
# family: (config, has superpixels, cfg options capping its size for the CPU)
FAMILIES = {
    'fcn16': ('configs/fcn16_r34_cityscapes_coarse.py', False, {}),
    'hcfcn16': ('configs/hcfcn16_r34_cityscapes_coarse.py', True, {}),
    'hcfcn': ('configs/hcfcn_r34_cityscapes_coarse.py', True, {}),
    # ASPP / auxiliary head narrowed (512 -> 64 channels): a 130 MB instead of 273 MB checkpoint
    'deeplabv3': ('configs/hcfcn-deeplabv3_r50-d16_cityscapes_fine.py', True, {
        'model.decode_head.channels': 64,
        'model.auxiliary_head.channels': 64
    }),
}
DEVICES = [
    'cpu',
    pytest.param(
        'cuda',
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason='no CUDA device on this machine'))
]


def _cap_resize(cfg, scale):
    for pipeline in (cfg.test_pipeline, cfg.test_dataloader.dataset.pipeline):
        for step in pipeline:
            if step['type'] == 'Resize':
                step['scale'] = scale


CITYSCAPES_META = dict(
    classes=CityscapesDataset.METAINFO['classes'], palette=CityscapesDataset.METAINFO['palette'])


@pytest.fixture(scope='module', params=list(FAMILIES))
def case(request, tmp_path_factory):
    """(config file, checkpoint, has superpixels) of one config family, random weights."""
    rel, has_spix, cfg_options = FAMILIES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    cfg = Config.fromfile(osp.join(REPO_ROOT, rel))
    cfg.merge_from_dict(cfg_options)
    _cap_resize(cfg, (W, H))
    config = str(tmp / osp.basename(rel))
    cfg.dump(config)
    ckpt = str(tmp / 'random.pth')
    save_random_checkpoint(config, ckpt, CITYSCAPES_META)
    return config, ckpt, has_spix


def _check_sample(sample, h, w, has_spix, num_classes=19):
    assert isinstance(sample, SegDataSample)
    assert tuple(sample.pred_sem_seg.data.shape) == (1, h, w)
    assert tuple(sample.seg_logits.data.shape) == (num_classes, h, w)
    if not has_spix:
        assert 'pred_superpixels' not in sample
        return
    spix = sample.pred_superpixels.data
    assert tuple(spix.shape) == (1, h, w) and spix.dtype == torch.int64
    # hard superpixels follow the assignments down to the stride-16 seeds of the network input
    # (the image after the pipeline's Resize, padded to a multiple of 16)
    in_h, in_w = sample.img_shape[:2]
    n = len(torch.unique(spix))
    assert 1 < n <= -(-in_h // 16) * -(-in_w // 16), (n, sample.img_shape)


@pytest.mark.parametrize('device', DEVICES)
def test_init_model_and_inference_model(case, images, device, tmp_path):
    config, ckpt, has_spix = case
    model = init_model(config, ckpt, device=device)
    assert model.dataset_meta['classes'] == CITYSCAPES_META['classes']
    a, b = osp.join(images, 'a.png'), osp.join(images, 'b.png')
    result = inference_model(model, a)
    _check_sample(result, H, W, has_spix)
    # a list gives a list (one batch: mmseg's test-time preprocessor needs equal sizes)
    c = str(tmp_path / 'c.png')
    cv2.imwrite(c, generated_image(H, W, 2))
    batch = inference_model(model, [a, c])
    assert isinstance(batch, list) and len(batch) == 2
    _check_sample(batch[1], H, W, has_spix)
    assert torch.equal(batch[0].pred_sem_seg.data, result.pred_sem_seg.data)
    assert not torch.equal(batch[1].pred_sem_seg.data, result.pred_sem_seg.data) or \
        has_spix and not torch.equal(batch[1].pred_superpixels.data,
                                     result.pred_superpixels.data)
    _check_sample(inference_model(model, b), 48, 64, has_spix)
    # a loaded (BGR) array gives the same prediction as the file (last: mmseg's inference_model
    # switches model.cfg.test_pipeline to LoadImageFromNDArray for good once given an array)
    from_array = inference_model(model, cv2.imread(a))
    assert torch.equal(from_array.pred_sem_seg.data, result.pred_sem_seg.data)


def test_mmseg_inferencer(case, images, tmp_path):
    config, ckpt, has_spix = case
    a = osp.join(images, 'a.png')
    expected = inference_model(init_model(config, ckpt, device='cpu'), a)
    inferencer = MMSegInferencer(model=config, weights=ckpt, device='cpu')
    # single image with out_dir: mmseg's vis/ and pred/ folders; the config's
    # SpixSegLocalVisualizer adds the superpixel tile next to the prediction overlay (HCFCN)
    out_dir = str(tmp_path / 'out')
    single = inferencer(a, out_dir=out_dir, show=False)
    assert np.array_equal(single['predictions'], expected.pred_sem_seg.data[0].numpy())
    listed = inferencer([a, osp.join(images, 'b.png')])
    assert [p.shape for p in listed['predictions']] == [(H, W), (48, 64)]
    folder = inferencer(images)
    assert np.array_equal(folder['predictions'][0], single['predictions'])
    assert [p.shape for p in folder['predictions']] == [(H, W), (48, 64)]
    samples = inferencer(a, return_datasamples=True)
    _check_sample(samples, H, W, has_spix)
    pred_png = cv2.imread(
        osp.join(out_dir, 'pred',
                 os.listdir(osp.join(out_dir, 'pred'))[0]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(pred_png, single['predictions'])
    vis = cv2.imread(osp.join(out_dir, 'vis', 'a.png'))[..., ::-1]
    assert vis.shape == (H, 2 * W if has_spix else W, 3)
    if has_spix:
        rgb = cv2.imread(a)[..., ::-1]
        drawn = draw_superpixel_boundaries(rgb, samples.pred_superpixels.data[0].numpy())
        assert np.array_equal(vis[:, W:], drawn)


def test_show_result_pyplot(case, images, tmp_path):
    config, ckpt, has_spix = case
    model = init_model(config, ckpt, device='cpu')
    a = osp.join(images, 'a.png')
    result = inference_model(model, a)
    out_file = str(tmp_path / 'shown.png')
    vis = show_result_pyplot(
        model, a, result, opacity=0.5, show=False, with_labels=False, out_file=out_file)
    # mmseg's overlay: image * (1 - opacity) + palette[prediction] * opacity
    rgb = cv2.imread(a)[..., ::-1].astype(np.float64)
    colors = np.asarray(CITYSCAPES_META['palette'], np.float64)[result.pred_sem_seg.data[0]]
    assert vis.shape == (H, W, 3)
    assert np.array_equal(vis, (rgb * 0.5 + colors * 0.5).astype(np.uint8))
    assert np.array_equal(cv2.imread(out_file)[..., ::-1], vis)


def test_inference_on_a_camvid_frame(case, camvid_root, tmp_path):
    config, ckpt, has_spix = case
    frame = sorted(glob.glob(osp.join(camvid_root, 'val', '*.png')))[0]
    model = init_model(config, ckpt, device='cpu')
    result = inference_model(model, frame)
    assert tuple(result.img_shape[:2]) == (75, 100)  # the capped Resize
    _check_sample(result, 360, 480, has_spix)
    vis = show_result_pyplot(
        model, frame, result, show=False, with_labels=True, out_file=str(tmp_path / 'camvid.png'))
    assert vis.shape == (360, 480, 3)
    out = MMSegInferencer(model=config, weights=ckpt, device='cpu')(frame, return_vis=True)
    assert out['predictions'].shape == (360, 480)
    assert out['visualization'].shape == (360, 480 * (2 if has_spix else 1), 3)


def test_every_config_test_pipeline_takes_a_bare_image(images):
    """The pipelines of all configs, as mmseg's two inference paths strip and run them."""
    configs = sorted(
        p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
        if '_base_' not in p.split(os.sep))
    assert len(configs) >= 20
    a = osp.join(images, 'a.png')
    inferencer = MMSegInferencer.__new__(MMSegInferencer)  # only for its _init_pipeline
    for path in configs:
        cfg = Config.fromfile(path)
        model = type('Model', (), {'cfg': cfg})  # _preprare_data reads only model.cfg
        for img in (a, cv2.imread(a)):  # a file, then an array (mmseg switches the loader)
            data, _ = _preprare_data(img, model)
            inputs, sample = data['inputs'][0], data['data_samples'][0]
            assert inputs.shape[0] == 3 and 'gt_sem_seg' not in sample, path
            assert tuple(sample.ori_shape) == (H, W), path
        packed = inferencer._init_pipeline(cfg)(a)
        assert packed['inputs'].shape[0] == 3, path
        assert 'gt_sem_seg' not in packed['data_samples'], path
