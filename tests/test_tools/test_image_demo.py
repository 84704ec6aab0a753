# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""demo/image_demo.py end to end: the prediction overlay and the superpixel boundaries, errors.

The issue's demo config (configs/demo/hcfcn_r34_synthetic_coarse.py) with random weights on a
generated image (fixture ``images``).
"""
import os.path as osp

import cv2
import pytest

import mmseg_spixreg  # noqa: F401
from tests.utils import REPO_ROOT, TEST_IMAGE_SIZE, run_tool, save_random_checkpoint

H, W = TEST_IMAGE_SIZE  # the main test image (fixture ``images``), not a multiple of 16


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    """The issue's demo config (configs/demo/hcfcn_r34_synthetic_coarse.py) with random weights."""
    from mmseg_spixreg.utils.synthetic_data import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
    ckpt = str(tmp_path_factory.mktemp('demo') / 'random.pth')
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'hcfcn_r34_synthetic_coarse.py')
    save_random_checkpoint(config, ckpt, dict(classes=SYNTHETIC_CLASSES, palette=SYNTHETIC_PALETTE))
    return config, ckpt


def test_image_demo_draws_superpixels_end_to_end(demo_checkpoint, images, tmp_path):
    config, ckpt = demo_checkpoint
    out_file = str(tmp_path / 'demo.png')
    a = osp.join(images, 'a.png')
    args = [a, config, ckpt, '--device', 'cpu', '--out-file', out_file, '--opacity', '0.6']
    run_tool(['demo/image_demo.py'] + args + ['--with-superpixels'])
    drawn = cv2.imread(out_file)
    assert drawn.shape == (H, 2 * W, 3)  # prediction overlay | superpixel boundaries
    boundary = (drawn[:, W:] == (0, 255, 255)).all(axis=2)  # yellow in BGR
    assert 0.02 < boundary.mean() < 0.6


def test_image_demo_overlay_and_errors(demo_checkpoint, images, tmp_path):
    import image_demo  # demo/ is on sys.path (setup.cfg: [tool:pytest] pythonpath)
    config, ckpt = demo_checkpoint
    a = osp.join(images, 'a.png')
    out_file = str(tmp_path / 'overlay.png')
    image_demo.main([a, config, ckpt, '--device', 'cpu', '--out-file', out_file])
    assert cv2.imread(out_file).shape == (H, W, 3)  # mmseg's overlay alone
    with pytest.raises(SystemExit):
        image_demo.main([a, config, ckpt, '--opacity', '0'])
    with pytest.raises(SystemExit):
        image_demo.main([str(tmp_path / 'missing.png'), config, ckpt])
    # a model without superpixels cannot draw them: clear error
    fcn_cfg = osp.join(REPO_ROOT, 'configs', 'fcn16_r34_suim_coarse.py')
    fcn_ckpt = str(tmp_path / 'fcn.pth')
    from mmseg_spixreg.datasets import SUIMDataset
    save_random_checkpoint(fcn_cfg, fcn_ckpt, dict(SUIMDataset.METAINFO))
    with pytest.raises(SystemExit, match='returns no pred_superpixels'):
        image_demo.main([
            a, fcn_cfg, fcn_ckpt, '--device', 'cpu', '--with-superpixels', '--out-file',
            str(tmp_path / 'x.png')
        ])
