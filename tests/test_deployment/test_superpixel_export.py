# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The traceable superpixel ops used for export equal the kernels of mmseg_spixreg.ops, in
PyTorch and, exported with dynamic shapes, in onnxruntime."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from mmseg_spixreg.deployment import (hard_superpixels_traceable, neighbour_correlation_traceable,
                                      seed_softmax_traceable, superpixel_upsample_traceable)
from mmseg_spixreg.deployment.superpixel_export import valid_seeds_traceable
from mmseg_spixreg.ops import (hard_superpixels, neighbour_correlation, seed_softmax,
                               superpixel_upsample, valid_seed_mask)
from tests.utils import hard_assign, rand_assign

pytestmark = pytest.mark.usefixtures('single_thread')

# (B, C, H, W) fine grids: one coarse cell, non-square, odd coarse sizes
SHAPES = [(1, 1, 2, 2), (2, 3, 6, 10), (1, 48, 10, 4), (3, 2, 8, 6)]


@pytest.mark.parametrize('shape', SHAPES)
def test_valid_seeds_equal_layout_mask(shape):
    _, C, H, W = shape
    coarse = torch.zeros(2, C, H // 2, W // 2)
    assert torch.equal(valid_seeds_traceable(coarse), valid_seed_mask(H, W))


@pytest.mark.parametrize('shape', SHAPES)
def test_upsample_equals_kernels(shape, block_size):
    g = torch.Generator().manual_seed(0)
    B, C, H, W = shape
    coarse = torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g)
    for assign in (rand_assign(B, H, W, generator=g),
                   torch.randn(B, 9, H, W, dtype=torch.float64, generator=g)):
        torch.testing.assert_close(
            superpixel_upsample_traceable(coarse, assign),
            superpixel_upsample(coarse, assign),
            rtol=0,
            atol=1e-12)


@pytest.mark.parametrize('shape', SHAPES)
def test_correlation_and_seed_softmax_equal_kernels(shape, block_size):
    g = torch.Generator().manual_seed(1)
    B, C, H, W = shape
    fine = F.normalize(torch.randn(B, C, H, W, dtype=torch.float64, generator=g), dim=1)
    coarse = F.normalize(torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g), dim=1)
    torch.testing.assert_close(
        neighbour_correlation_traceable(fine, coarse),
        neighbour_correlation(fine, coarse),
        rtol=0,
        atol=1e-12)
    traced = seed_softmax_traceable(fine, coarse, 0.07)
    torch.testing.assert_close(traced, seed_softmax(fine, coarse, 0.07), rtol=0, atol=1e-12)
    assert (traced[~valid_seed_mask(H, W).expand_as(traced)] == 0).all()
    # normalisation inside (cosine similarities of unnormalised features), where the kernels
    # offer it
    if 'normalize_eps' not in inspect.signature(seed_softmax).parameters:
        return
    raw_f, raw_c = 3 * fine + 0.5, 2 * coarse - 0.25
    torch.testing.assert_close(
        seed_softmax_traceable(raw_f, raw_c, 0.07, normalize_eps=1e-12),
        seed_softmax(raw_f, raw_c, 0.07, normalize_eps=1e-12),
        rtol=0,
        atol=1e-12)


@pytest.mark.parametrize('size', [(8, 12), (4, 4), (16, 8)])
def test_hard_superpixels_equal_ops(size):
    g = torch.Generator().manual_seed(2)
    H, W = size
    for make in (rand_assign, hard_assign):
        a4 = make(2, H, W, generator=g)
        a8 = make(2, H // 2, W // 2, generator=g)
        assert torch.equal(hard_superpixels_traceable([a4]), hard_superpixels([a4]))
        assert torch.equal(hard_superpixels_traceable([a4, a8]), hard_superpixels([a4, a8]))


class _TwoLevels(torch.nn.Module):
    """eq. 1 softmax at two levels, eq. 2 through both, hard superpixels: what HCFCN exports."""

    def forward(self, f4, f8, f16, logits):
        a4 = seed_softmax_traceable(F.normalize(f4, dim=1), F.normalize(f8, dim=1), 0.07)
        a8 = seed_softmax_traceable(F.normalize(f8, dim=1), F.normalize(f16, dim=1), 0.07)
        up = superpixel_upsample_traceable(superpixel_upsample_traceable(logits, a8), a4)
        return up, hard_superpixels_traceable([a4, a8])


def _inputs(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(b, c, k * h, k * w, generator=g) for c, k in ((8, 4), (8, 2), (8, 1), (5, 1)))


def test_onnx_export_of_the_ops_equals_kernels(tmp_path):
    """Exported once with dynamic batch and sizes, run in onnxruntime at two other sizes."""
    ort = pytest.importorskip('onnxruntime', reason='requirements/deploy.txt not installed')
    pytest.importorskip('onnxscript', reason='requirements/deploy.txt not installed')
    names = ['f4', 'f8', 'f16', 'logits']
    h = torch.export.Dim('h', min=1, max=256)
    w = torch.export.Dim('w', min=1, max=256)
    b = torch.export.Dim('b', min=1, max=8)
    shapes = tuple({0: b, 2: k * h, 3: k * w} for k in (4, 2, 1, 1))
    program = torch.onnx.export(
        _TwoLevels(),
        _inputs(2, 3, 5, 0),
        dynamo=True,
        opset_version=19,
        dynamic_shapes=shapes,
        input_names=names,
        verbose=False)
    ops = {n.op_type for n in program.model_proto.graph.node}
    assert 'GatherElements' in ops and 'Softmax' in ops
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=['CPUExecutionProvider'])
    for b_, h_, w_ in [(1, 5, 7), (3, 16, 12)]:
        x = _inputs(b_, h_, w_, 1)
        up, spix = session.run(None, {k: v.numpy() for k, v in zip(names, x)})
        a4 = seed_softmax(F.normalize(x[0], dim=1), F.normalize(x[1], dim=1), 0.07)
        a8 = seed_softmax(F.normalize(x[1], dim=1), F.normalize(x[2], dim=1), 0.07)
        ref = superpixel_upsample(superpixel_upsample(x[3], a8), a4)
        assert up.shape == (b_, 5, 4 * h_, 4 * w_)
        torch.testing.assert_close(torch.from_numpy(up), ref, rtol=0, atol=1e-5)
        assert torch.equal(torch.from_numpy(spix), hard_superpixels([a4, a8]))
