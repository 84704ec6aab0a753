# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The bytes model of benchmarks/bench_ops.py (the memory roofline of q(x, A))."""
import importlib.util
import os.path as osp

import pytest

from tests.utils import REPO_ROOT


@pytest.fixture(scope='module')
def bench_ops():
    spec = importlib.util.spec_from_file_location('bench_ops',
                                                  osp.join(REPO_ROOT, 'benchmarks', 'bench_ops.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_min_bytes_counts_each_tensor_once(bench_ops):
    B, C, H, W = 8, 32, 256, 256
    N = B * H * W
    # forward: read x, A4, A8, write q; backward: read g, x, A4, A8, write gx, gA4, gA8
    x = q = g = gx = C * N
    a4, a8 = 9 * N, 9 * N // 4
    expected = 4 * (x + a4 + a8 + q + g + x + a4 + a8 + gx + a4 + a8)
    assert bench_ops.min_bytes(B, C, H, W) == expected
    # the figure: about 406 MB at 8x32x256x256 in fp32
    assert 405e6 < expected < 407e6
    # one level, half precision
    assert bench_ops.min_bytes(1, 3, 4, 8, levels=1, itemsize=2) == 2 * (5 * 3 + 27) * 32


def test_chain_bytes_at_least_the_minimum(bench_ops):
    for C in (1, 5, 19, 32, 64):
        least = bench_ops.min_bytes(2, C, 64, 64)
        chain = bench_ops.chain_bytes(2, C, 64, 64)
        # the chain re-reads A and the fine maps a few times: within 2x of the minimum
        assert least < chain < 2 * least, (C, chain / least)
