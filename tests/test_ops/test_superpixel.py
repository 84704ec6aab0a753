# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Tests of the superpixel core ops against slow loop references.

These run the default backend ('auto': the torch kernels for CPU tensors);
tests/test_ops/test_triton_kernels.py runs the Triton kernels against the same references
(tests/utils.py), and tests/test_models/test_utils/test_superpixel_assignment.py the learned
assignment of eq. 1.
"""
import itertools

import pytest
import torch

from mmseg_spixreg.models.utils import SuperpixelAssignment
from mmseg_spixreg.ops import (hard_superpixels, neighbour_correlation, seed_coordinates,
                               superpixel_downsample, superpixel_reconstruct, superpixel_upsample,
                               torch_kernels)
from tests.utils import (hard_assign, in_map_seeds, rand_assign, ref_downsample, ref_reconstruct,
                         ref_upsample)

# (B, C, H, W) fine-grid shapes: a 2x2 image (one coarse cell), non-square,
# odd coarse sizes and a single image.
SHAPES = [(1, 1, 2, 2), (2, 3, 6, 10), (1, 2, 10, 4), (3, 2, 8, 6)]


@pytest.fixture(params=['whole', 'bands'])
def bands(request, monkeypatch):
    """The torch kernels on the whole map at once, or band by band: bands of one coarse row of
    one image (CPU_BAND_NUMEL below one row), so every band border and halo row is crossed."""
    if request.param == 'bands':
        monkeypatch.setattr(torch_kernels, 'CPU_BAND_NUMEL', 1)
    return request.param


# ---------------------------------------------------------------------------
# Against the loop references
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.usefixtures('bands')
def test_upsample_matches_loop_reference(shape):
    g = torch.Generator().manual_seed(0)
    B, C, H, W = shape
    coarse = torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g)
    assign = rand_assign(B, H, W, generator=g)
    torch.testing.assert_close(superpixel_upsample(coarse, assign), ref_upsample(coarse, assign))
    # Not a valid assignment (negative weights, rows not summing to 1): the
    # operator is still the plain sum over in-map seeds.
    assign = torch.randn(B, 9, H, W, dtype=torch.float64, generator=g)
    torch.testing.assert_close(superpixel_upsample(coarse, assign), ref_upsample(coarse, assign))


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.usefixtures('bands')
def test_downsample_matches_loop_reference(shape):
    g = torch.Generator().manual_seed(1)
    B, C, H, W = shape
    fine = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    assign = rand_assign(B, H, W, generator=g)
    torch.testing.assert_close(superpixel_downsample(fine, assign), ref_downsample(fine, assign))
    torch.testing.assert_close(
        superpixel_downsample(fine, assign, eps=0.5), ref_downsample(fine, assign, eps=0.5))


@pytest.mark.parametrize('size', [(8, 12), (4, 4), (12, 8)])
@pytest.mark.usefixtures('bands')
def test_reconstruct_matches_loop_reference(size):
    g = torch.Generator().manual_seed(2)
    H, W = size
    x = torch.randn(2, 3, H, W, dtype=torch.float64, generator=g)
    a1 = rand_assign(2, H, W, generator=g)
    a2 = rand_assign(2, H // 2, W // 2, generator=g)
    torch.testing.assert_close(superpixel_reconstruct(x, [a1]), ref_reconstruct(x, [a1]))
    torch.testing.assert_close(superpixel_reconstruct(x, [a1, a2]), ref_reconstruct(x, [a1, a2]))
    torch.testing.assert_close(
        superpixel_reconstruct(x, (a1, a2)),
        superpixel_upsample(
            superpixel_upsample(superpixel_downsample(superpixel_downsample(x, a1), a2), a2), a1))


@pytest.mark.usefixtures('bands')
def test_neighbour_correlation_matches_loop_reference():
    g = torch.Generator().manual_seed(3)
    fine = torch.randn(2, 3, 6, 8, dtype=torch.float64, generator=g)
    coarse = torch.randn(2, 3, 3, 4, dtype=torch.float64, generator=g)
    expected = torch.zeros(2, 9, 6, 8, dtype=torch.float64)
    for b, y, x in itertools.product(range(2), range(6), range(8)):
        for j, sy, sx in in_map_seeds(y, x, 3, 4):
            expected[b, j, y, x] = torch.dot(fine[b, :, y, x], coarse[b, :, sy, sx])
    torch.testing.assert_close(neighbour_correlation(fine, coarse), expected)


# ---------------------------------------------------------------------------
# Gradients (float64 gradcheck, w.r.t. features and assignments)
# ---------------------------------------------------------------------------
# op, shape of its first input, fine grid of its assignment (None: the second input is the
# coarse features of the correlation)
GRADCHECK_CASES = {
    'upsample': (superpixel_upsample, (2, 2, 3, 2), (6, 4)),
    'downsample': (superpixel_downsample, (2, 2, 6, 4), (6, 4)),
    'correlation': (neighbour_correlation, (2, 2, 4, 6), None),
}


@pytest.mark.parametrize('name', list(GRADCHECK_CASES))
@pytest.mark.usefixtures('bands')
def test_gradcheck(name):
    op, shape, grid = GRADCHECK_CASES[name]
    g = torch.Generator().manual_seed(6)
    first = torch.randn(*shape, dtype=torch.float64, generator=g)
    if grid is None:  # correlation: fine features and their coarse seeds
        B, C, H, W = shape
        second = torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g)
    else:
        second = rand_assign(shape[0], *grid, generator=g)
    assert torch.autograd.gradcheck(op, (first.requires_grad_(), second.requires_grad_()))


@pytest.mark.usefixtures('bands')
def test_gradcheck_reconstruct():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(1, 2, 8, 4, dtype=torch.float64, generator=g)
    a1 = rand_assign(1, 8, 4, generator=g)
    a2 = rand_assign(1, 4, 2, generator=g)
    inputs = (x.requires_grad_(), a1.requires_grad_(), a2.requires_grad_())
    assert torch.autograd.gradcheck(lambda x, a1, a2: superpixel_reconstruct(x, [a1, a2]), inputs)


def test_thread_count_does_not_change_results():
    """Results and gradients do not depend on the number of CPU threads (no atomics, no
    reduction order that changes with the split), and the thread setting is left alone."""
    torch.manual_seed(19)
    x = torch.randn(5, 3, 8, 12, dtype=torch.float64)
    levels = [rand_assign(5, 8, 12), rand_assign(5, 4, 6)]

    def run():
        inputs = [t.clone().requires_grad_() for t in [x] + levels]
        out = superpixel_reconstruct(inputs[0], inputs[1:])
        out.backward(torch.ones_like(out))
        return [out.detach()] + [t.grad for t in inputs]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = run()
        torch.set_num_threads(2)
        pooled = run()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(single, pooled):
        torch.testing.assert_close(a, b)


def test_bands_equal_the_whole_map():
    """The banded evaluation of the torch kernels (CPU, eager) gives the whole-map result, for
    every op and gradient of q(x, A), with bands that split images and rows (and the halo rows
    that neighbouring bands both write)."""
    g = torch.Generator().manual_seed(20)
    x = torch.randn(3, 5, 24, 20, dtype=torch.float64, generator=g)
    levels = [rand_assign(3, 24, 20, generator=g), rand_assign(3, 12, 10, generator=g)]
    fine, coarse = torch.randn(3, 4, 24, 20, dtype=torch.float64, generator=g), \
        torch.randn(3, 4, 12, 10, dtype=torch.float64, generator=g)

    def run():
        inputs = [t.clone().requires_grad_() for t in [x] + levels]
        out = superpixel_reconstruct(inputs[0], inputs[1:])
        out.backward(torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator()))
        return [out.detach()] + [t.grad for t in inputs] + [
            neighbour_correlation(fine, coarse),
            superpixel_upsample(coarse, levels[0]),
            superpixel_downsample(fine, levels[0])
        ]

    whole = run()
    for numel in (1, 5 * 2 * 20 * 3, 5 * 2 * 20 * 12 * 2):  # 1 row, 3 rows, 2 images per band
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch_kernels, 'CPU_BAND_NUMEL', numel)
            bands = torch_kernels._bands(x, x.shape[1])
            assert len(bands) > 1
            for a, b in zip(whole, run()):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_partial_requires_grad_and_expanded_grad():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    a1 = rand_assign(2, 8, 8).float()
    a2 = rand_assign(2, 4, 4).float().requires_grad_()
    superpixel_reconstruct(x, [a1, a2]).sum().backward()  # expanded grad
    assert torch.isfinite(x.grad).all() and torch.isfinite(a2.grad).all()
    assert a1.grad is None


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------
def test_reconstruct_of_constant_is_constant():
    g = torch.Generator().manual_seed(10)
    value = torch.tensor([3.5, -2.0], dtype=torch.float64).view(1, 2, 1, 1)
    x = value.expand(2, 2, 16, 12)
    levels = [rand_assign(2, 16 // 2**k, 12 // 2**k, generator=g) for k in range(2)]
    torch.testing.assert_close(superpixel_reconstruct(x, levels), x.expand(2, 2, 16, 12))


def test_hard_downsample_is_exact_superpixel_mean():
    g = torch.Generator().manual_seed(11)
    fine = torch.randn(2, 3, 8, 10, dtype=torch.float64, generator=g)
    assign = hard_assign(2, 8, 10, generator=g)
    labels = hard_superpixels([assign])  # seed of every pixel
    out = superpixel_downsample(fine, assign)
    for b in range(2):
        for s in range(4 * 5):
            members = labels[b] == s
            if members.any():
                expected = fine[b][:, members].mean(1)
            else:  # empty superpixel
                expected = torch.zeros(3, dtype=torch.float64)
            torch.testing.assert_close(out[b, :, s // 5, s % 5], expected)


def test_upsample_downsample_idempotent_for_hard_assignment():
    g = torch.Generator().manual_seed(12)
    fine = torch.randn(2, 3, 8, 10, dtype=torch.float64, generator=g)
    assign = hard_assign(2, 8, 10, generator=g)

    def project(t):
        return superpixel_upsample(superpixel_downsample(t, assign), assign)

    once = project(fine)
    torch.testing.assert_close(project(once), once)
    assert not torch.allclose(once, fine)


@pytest.mark.usefixtures('bands')
def test_empty_superpixels_give_zero_and_finite_grads():
    # Every pixel assigned to the seed of its own cell, except that no pixel
    # picks cell (0, 0): that superpixel is empty.
    H, W = 4, 4
    assign = torch.zeros(1, 9, H, W, dtype=torch.float64)
    assign[:, 4] = 1
    assign[:, 4, :2, :2] = 0
    assign[:, 5, :2, :2] = 1  # (dy, dx) = (0, 1)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        fine = torch.randn(1, 2, H, W).to(dtype).requires_grad_()
        a = assign.to(dtype).detach().clone().requires_grad_()
        out = superpixel_downsample(fine, a)
        assert out.dtype == dtype
        assert (out[:, :, 0, 0] == 0).all()
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(fine.grad).all()
        assert not torch.isnan(a.grad).any()
        # cell (0, 0)'s pixels feed seed (0, 1), which has 8 members
        torch.testing.assert_close(fine.grad[:, :, :2, :2].double(),
                                   torch.full((1, 2, 2, 2), 1 / 8, dtype=torch.float64))
    # gradients of q with empty superpixels are finite too
    x = torch.randn(1, 2, H, W, dtype=torch.float64, requires_grad=True)
    superpixel_reconstruct(x, [assign]).square().sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------
# Hard superpixels
# ---------------------------------------------------------------------------
def test_hard_superpixels_single_level_by_hand():
    assign = torch.zeros(1, 9, 4, 4)
    assign[:, 4] = 1  # every pixel: its own cell
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    assert torch.equal(hard_superpixels([assign])[0], expected)
    # pixel (0, 0) prefers its right neighbour cell, pixel (3, 3) the one
    # above-left, pixel (2, 1) the one above-right (j = 3*0 + 2 = 2).
    assign[0, :, 0, 0] = 0
    assign[0, 5, 0, 0] = 1
    assign[0, :, 3, 3] = 0
    assign[0, 0, 3, 3] = 1
    assign[0, :, 2, 1] = 0
    assign[0, 2, 2, 1] = 1
    expected[0, 0], expected[3, 3], expected[2, 1] = 1, 0, 1
    labels = hard_superpixels([assign])
    assert labels.dtype == torch.long and labels.shape == (1, 4, 4)
    assert torch.equal(labels[0], expected)


def test_hard_superpixels_ignores_out_of_map_seeds():
    # Out-of-map weights are supposed to be 0; even if a malformed
    # assignment puts most weight there, the pick stays inside the map.
    assign = torch.zeros(1, 9, 2, 2)
    assign[:, 0] = 0.9  # up-left: outside for every pixel
    assign[:, 4] = 0.1
    assert torch.equal(hard_superpixels([assign]), torch.zeros(1, 2, 2).long())


def test_hard_superpixels_two_levels_by_hand():
    # 8x8 fine -> 4x4 -> 2x2. Level 1: every pixel to its own cell; level 2:
    # level-1 cell (1, 1) goes to its down-right seed (j = 8) -> seed (1, 1),
    # cell (2, 2) goes up-left (j = 0) -> seed (0, 0); others own cell.
    a1 = torch.zeros(1, 9, 8, 8)
    a1[:, 4] = 1
    a2 = torch.zeros(1, 9, 4, 4)
    a2[:, 4] = 1
    a2[0, :, 1, 1] = 0
    a2[0, 8, 1, 1] = 1
    a2[0, :, 2, 2] = 0
    a2[0, 0, 2, 2] = 1
    labels = hard_superpixels([a1, a2])[0]
    expected = torch.tensor([[0, 0, 1, 1], [0, 3, 1, 1], [2, 2, 0, 3], [2, 2, 3, 3]])
    expected = expected.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(labels, expected)


def test_hard_superpixels_matches_loop_reference():
    torch.manual_seed(13)
    levels = [rand_assign(2, 16, 12), rand_assign(2, 8, 6)]
    labels = hard_superpixels(levels)
    for b, y, x in itertools.product(range(2), range(16), range(12)):
        cy, cx = y, x
        for assign in levels:
            j = int(assign[b, :, cy, cx].argmax())
            cy, cx = seed_coordinates(j, cy, cx)
        assert labels[b, y, x] == cy * 3 + cx


@pytest.mark.parametrize('size,crop', [((166, 12), (2, 6)), ((17, 29), None), ((3, 4), (8, 12)),
                                       ((148, 300), (6, 10))])
def test_hard_superpixels_crop_and_resize_equal_interpolate(size, crop):
    """``crop`` then ``size``: F.interpolate(mode='nearest') of the cropped ids, index for
    index (its float32 source index, also at ratios where float64 would round the other way:
    2 -> 166 rows)."""
    g = torch.Generator().manual_seed(12)
    levels = [rand_assign(2, 8, 12, generator=g), rand_assign(2, 4, 6, generator=g)]
    plain = hard_superpixels(levels)
    ch, cw = crop or (8, 12)
    expected = torch.nn.functional.interpolate(
        plain[:, None, :ch, :cw].float(), size=size, mode='nearest')[:, 0].long()
    assert torch.equal(hard_superpixels(levels, size=size, crop=crop), expected)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
_C = torch.randn(2, 3, 4, 5)
_A = torch.rand(2, 9, 8, 10)
_F = torch.randn(2, 3, 8, 10)
# the paper's K and tau (SuperpixelAssignment has no defaults for them)
K_TAU = dict(embed_dims=48, tau=0.07)
BAD_INPUTS = {
    'up-odd-fine': (lambda: superpixel_upsample(_C, torch.rand(2, 9, 7, 10)), 'even'),
    'up-8-channels': (lambda: superpixel_upsample(_C, torch.rand(2, 8, 8, 10)), '9 channels'),
    'up-no-pair': (lambda: superpixel_upsample(torch.randn(2, 3, 5, 5), _A), 'does not pair'),
    'up-batch': (lambda: superpixel_upsample(_C[:1], _A), 'batch'),
    'up-long': (lambda: superpixel_upsample(_C.long(), _A), 'floating'),
    'up-3d': (lambda: superpixel_upsample(_C[0], _A), '4-D'),
    'down-int-assign': (lambda: superpixel_downsample(_F, _A.int()), 'floating'),
    'down-size': (lambda: superpixel_downsample(_F[:, :, :6], _A), 'equal the fine grid'),
    'down-odd': (lambda: superpixel_downsample(_F[..., :9], _A[..., :9]), 'even'),
    'down-batch': (lambda: superpixel_downsample(_F[:1], _A), 'batch'),
    'down-eps': (lambda: superpixel_downsample(_F, _A, eps=0), 'eps'),
    'q-empty': (lambda: superpixel_reconstruct(_F, []), 'empty'),
    'q-not-list': (lambda: superpixel_reconstruct(_F, _A), 'list'),
    'q-level-size':
    (lambda: superpixel_reconstruct(_F, [_A, torch.rand(2, 9, 8, 10)]), 'coarse grid'),
    'q-level-batch':
    (lambda: superpixel_reconstruct(_F[..., :8], [_A[..., :8], torch.rand(1, 9, 4, 4)]), 'batch'),
    'q-x-size': (lambda: superpixel_reconstruct(_F[..., :8], [_A]), 'equal the fine grid'),
    'hard-odd-level': (lambda: hard_superpixels([_A, torch.rand(2, 9, 4, 5)]), 'even'),
    'corr-channels': (lambda: neighbour_correlation(_F, _C[:, :2]), 'channels'),
    'module-k': (lambda: SuperpixelAssignment(3, 3, embed_dims=0, tau=0.07), 'embed_dims'),
    'module-tau-0': (lambda: SuperpixelAssignment(3, 3, embed_dims=48, tau=0.0), 'tau'),
    'module-tau-neg': (lambda: SuperpixelAssignment(3, 3, embed_dims=48, tau=-1), 'tau'),
    'module-channels': (lambda: SuperpixelAssignment(0, 3, **K_TAU), 'fine_channels'),
    'module-no-pair': (lambda: SuperpixelAssignment(3, 3, **K_TAU)
                       (_F, torch.randn(2, 3, 4, 4)), 'does not pair'),
    'module-in-channels': (lambda: SuperpixelAssignment(3, 3, **K_TAU)
                           (_F[:, :2], _C), '3 channels'),
    'module-odd': (lambda: SuperpixelAssignment(3, 3, **K_TAU)(_F[:, :, :7], _C), 'even'),
    'module-batch': (lambda: SuperpixelAssignment(3, 3, **K_TAU)(_F, _C[:1]), 'batch'),
    'module-long': (lambda: SuperpixelAssignment(3, 3, **K_TAU)(_F.long(), _C), 'floating'),
}


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_value_errors(case):
    fn, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        fn()


# ---------------------------------------------------------------------------
# Dtypes, autocast, layouts, devices
# ---------------------------------------------------------------------------
def test_dtype_promotion_and_non_contiguous_inputs():
    torch.manual_seed(14)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    a = rand_assign(2, 8, 6)
    expected = superpixel_reconstruct(x, [a])
    assert superpixel_reconstruct(x.half(), [a.half()]).dtype == torch.half
    assert superpixel_upsample(x[..., :4, :3].half(), a.float()).dtype \
        == torch.float32
    # channels_last / sliced (non-contiguous) inputs give the same result
    x_cl = x.contiguous(memory_format=torch.channels_last)
    a_cl = a.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(superpixel_reconstruct(x_cl, [a_cl]), expected)
    wide = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    wide[..., ::2] = x
    torch.testing.assert_close(superpixel_reconstruct(wide[..., ::2], [a]), expected)


def test_autocast_bf16_cpu_finite():
    torch.manual_seed(15)
    module = SuperpixelAssignment(8, 8, embed_dims=48, tau=0.07)
    fine = torch.randn(2, 8, 16, 16) * 50
    coarse = torch.randn(2, 8, 8, 8) * 50
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        a1 = module(fine, coarse)
        a2 = module(coarse, torch.randn(2, 8, 4, 4))
        assert a1.dtype == torch.float32
        q = superpixel_reconstruct(x.bfloat16(), [a1, a2])
        down = superpixel_downsample(x.bfloat16(), a1.bfloat16() * 1e-6)
    assert torch.isfinite(a1).all() and torch.isfinite(q).all()
    torch.testing.assert_close(a1.sum(1), torch.ones(2, 16, 16))
    assert down.dtype == torch.bfloat16 and torch.isfinite(down).all()
    q.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(module.fine_proj.weight.grad).all()
    # tiny tau: logits of +-1000 must not overflow the softmax
    sharp = SuperpixelAssignment(8, 8, embed_dims=48, tau=1e-3)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.isfinite(sharp(fine, coarse)).all()


def test_half_precision_normalisation_is_safe():
    # seed masses of ~1e-7 underflow fp16 (and 1e-8 + mass would be 0);
    # the mean is computed in fp32 and stays close to the fp32 result.
    torch.manual_seed(16)
    fine = torch.randn(1, 2, 8, 8)
    assign = rand_assign(1, 8, 8).float() * 1e-3
    ref = superpixel_downsample(fine, assign)
    out = superpixel_downsample(fine.half(), assign.half())
    assert out.dtype == torch.half and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA is not available')


@pytest.fixture(params=['torch', 'triton'])
def auto_kernels(request, monkeypatch):
    """What ``backend='auto'`` runs for CUDA tensors: the torch kernels (the default until a GPU
    run has verified the Triton kernels) or, opted in with MMSEG_SPIXREG_TRITON=1, Triton's."""
    monkeypatch.setenv('MMSEG_SPIXREG_TRITON', '1' if request.param == 'triton' else '0')
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    return request.param


@requires_cuda
def test_cuda_matches_cpu(auto_kernels):
    torch.manual_seed(17)
    module = SuperpixelAssignment(4, 4, embed_dims=8, tau=0.1)
    fine, coarse = torch.randn(2, 4, 16, 12), torch.randn(2, 4, 8, 6)
    x = torch.randn(2, 3, 16, 12)
    a1 = module(fine, coarse).detach()
    a2 = rand_assign(2, 8, 6).float()
    module_cuda = SuperpixelAssignment(4, 4, embed_dims=8, tau=0.1).cuda()
    module_cuda.load_state_dict(module.state_dict())
    torch.testing.assert_close(module_cuda(fine.cuda(), coarse.cuda()).cpu(), a1)
    xc = x.cuda().requires_grad_()
    q = superpixel_reconstruct(xc, [a1.cuda(), a2.cuda()])
    torch.testing.assert_close(q.cpu(), superpixel_reconstruct(x, [a1, a2]))
    q.sum().backward()
    assert torch.isfinite(xc.grad).all()
    assert torch.equal(hard_superpixels([a1.cuda(), a2.cuda()]).cpu(), hard_superpixels([a1, a2]))


@requires_cuda
def test_cuda_autocast_fp16_finite(auto_kernels):
    torch.manual_seed(18)
    module = SuperpixelAssignment(8, 8, **K_TAU).cuda()
    fine = torch.randn(2, 8, 32, 32, device='cuda') * 100
    coarse = torch.randn(2, 8, 16, 16, device='cuda') * 100
    x = torch.randn(2, 4, 32, 32, device='cuda', requires_grad=True)
    with torch.autocast('cuda', dtype=torch.float16):
        a1 = module(fine, coarse)
        q = superpixel_reconstruct(x.half(), [a1])
    assert torch.isfinite(a1).all() and torch.isfinite(q).all()
    q.float().sum().backward()
    assert torch.isfinite(x.grad).all()
