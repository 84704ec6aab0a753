# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Shared pytest fixtures: repository paths, the generated data set and real CamVid, generated
images, one torch thread; the share of the cores of each pytest-xdist worker. Helpers
(functions, constants) are in tests/utils.py."""
import os
import os.path as osp
import shutil

import cv2
import pytest
import torch

from tests.utils import (CAMVID_ROOT, REPO_ROOT, SHARED_CAMVID_ROOT, TEST_IMAGE_SIZE,
                         generated_image, link_camvid)


def pytest_configure(config):
    """CamVid where the configs read it (data/camvid): linked from the team's copy
    (../shared/data/camvid) when there is one, before any test module is collected (some skip at
    import time where CamVid is absent), as ``make data`` does.

    Under pytest-xdist (``make test`` runs ``-n auto``) each worker gets its share of the cores:
    torch's intra-op threads in the worker and ``OMP_NUM_THREADS`` for the tools it starts (a
    test that sets its own value keeps it), so the workers do not oversubscribe the machine."""
    if osp.isdir(SHARED_CAMVID_ROOT) and not osp.lexists(CAMVID_ROOT):
        try:
            link_camvid(SHARED_CAMVID_ROOT, CAMVID_ROOT)
        except FileExistsError:  # another xdist worker linked it first
            pass
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ.setdefault('OMP_NUM_THREADS', str(threads))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def camvid_root():
    """Path of the real CamVid data (data/camvid, where the configs read it); skips where it is
    absent."""
    if not osp.isdir(osp.join(CAMVID_ROOT, 'val')):
        pytest.skip(f'real CamVid data not found at {CAMVID_ROOT} (it ships beside the repo in '
                    'CI and on the team machines; tests that need it cannot run without it)')
    return CAMVID_ROOT


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small generated data set (mmseg folder layout), 64x64, 5 classes."""
    from mmseg_spixreg.utils.synthetic_data import make_synthetic_dataset
    root = str(tmp_path_factory.mktemp('synthetic'))
    return make_synthetic_dataset(root, num_train=8, num_val=4, size=(64, 64), seed=0)


@pytest.fixture
def synthetic_copy(tmp_path, synthetic_root):
    """A writable copy of the generated data set (5 classes, 64x64)."""
    root = str(tmp_path / 'data')
    shutil.copytree(synthetic_root, root)
    return root


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """A folder with two generated images: a.png (100x76) and b.png (64x48)."""
    H, W = TEST_IMAGE_SIZE
    folder = tmp_path_factory.mktemp('images')
    cv2.imwrite(str(folder / 'a.png'), generated_image(H, W, 0))
    cv2.imwrite(str(folder / 'b.png'), generated_image(48, 64, 1))
    return str(folder)


@pytest.fixture(scope='module')
def single_thread():
    """Small tensors: one thread beats a thread pool, and is stable on a shared CPU (two threads
    on two busy cores made a training loop 20x slower). Model tests use it for their whole
    module: ``pytestmark = pytest.mark.usefixtures('single_thread')``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
