# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The Triton kernel set against the loop references and the torch kernel
set: values and gradients, launch counts, and the compiled code (sm_90 PTX).

On CPU the kernels run through Triton's interpreter: the ``target`` fixture
sets ``TRITON_INTERPRET=1`` for the test (the kernels are jitted per call, so
it does not matter which module imported triton first). On a machine with
CUDA the same tests also run the compiled kernels on the GPU (``cuda``
parameter; skipped with a reason elsewhere). Sizes are small: the interpreter
runs every program instance in numpy.
"""
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import mmseg_spixreg.ops.backends as backends
import mmseg_spixreg.ops.superpixel as api
from mmseg_spixreg.models.utils import SuperpixelAssignment
from mmseg_spixreg.ops import (hard_superpixels, neighbour_correlation, seed_softmax,
                               superpixel_downsample, superpixel_reconstruct, superpixel_upsample,
                               torch_kernels, valid_seed_mask)
from mmseg_spixreg.ops.superpixel import superpixel_upsample_hierarchy
from tests.utils import (REPO_ROOT, rand_assign, ref_assignment, ref_downsample, ref_reconstruct,
                         ref_upsample)

pytest.importorskip(
    'triton',
    reason='triton does not import here (it ships with CUDA builds '
    'of torch on Linux; requirements/torch.txt pins it)')
import triton.language as tl  # noqa: E402

from mmseg_spixreg.ops import triton_kernels  # noqa: E402
from mmseg_spixreg.ops.triton_kernels import kernels  # noqa: E402
from mmseg_spixreg.ops.triton_kernels import launch as triton_launch  # noqa: E402


@pytest.fixture(params=['interpreter', 'cuda'])
def target(request, monkeypatch):
    """Where the Triton kernels run: 'interpreter' (CPU tensors,
    TRITON_INTERPRET=1) or 'cuda' (compiled, needs a GPU)."""
    if request.param == 'interpreter':
        monkeypatch.setenv('TRITON_INTERPRET', '1')
        return torch.device('cpu')
    if not torch.cuda.is_available():
        pytest.skip('CUDA is not available: the compiled Triton kernels '
                    'need an NVIDIA GPU (the interpreter variant ran)')
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    return torch.device('cuda')


def _close(actual, expected, dtype=torch.float64):
    tol = {} if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(actual.cpu(), expected.cpu(), **tol)


def _both(fn, inputs, device):
    """Values and gradients (w.r.t. every input) of ``fn`` under the torch
    kernels (CPU) and the Triton kernels (``device``), same upstream grad."""
    results = []
    for backend, dev in (('torch', torch.device('cpu')), ('triton', device)):
        leaves = [t.detach().to(dev).requires_grad_() for t in inputs]
        out = fn(*leaves, backend=backend)
        g = torch.Generator().manual_seed(123)
        grad = torch.randn(out.shape, dtype=out.dtype, generator=g)
        out.backward(grad.to(dev))
        results.append([out.detach().cpu()] + [t.grad.cpu() for t in leaves])
    return results


def _q(x, a1, *rest, backend):
    return superpixel_reconstruct(x, [a1, *rest], backend=backend)


def _hier(coarse, a1, *rest, backend):
    return superpixel_upsample_hierarchy(coarse, [a1, *rest], backend=backend)


# ---------------------------------------------------------------------------
# Values against the loop references (float64)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('shape', [(1, 1, 2, 2), (3, 3, 6, 10), (1, 19, 4, 8), (2, 2, 10, 4)])
def test_values_match_loop_references(shape, target):
    g = torch.Generator().manual_seed(0)
    B, C, H, W = shape
    coarse = torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g)
    fine = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    assign = rand_assign(B, H, W, generator=g)
    dev = target
    _close(
        superpixel_upsample(coarse.to(dev), assign.to(dev), backend='triton'),
        ref_upsample(coarse, assign))
    # not a valid assignment: still the plain sum over in-map seeds
    raw = torch.randn(B, 9, H, W, dtype=torch.float64, generator=g)
    _close(
        superpixel_upsample(coarse.to(dev), raw.to(dev), backend='triton'),
        ref_upsample(coarse, raw))
    _close(
        superpixel_downsample(fine.to(dev), assign.to(dev), eps=0.5, backend='triton'),
        ref_downsample(fine, assign, eps=0.5))
    levels = [assign]
    if H % 4 == 0 and W % 4 == 0:
        levels.append(rand_assign(B, H // 2, W // 2, generator=g))
    _close(
        superpixel_reconstruct(fine.to(dev), [a.to(dev) for a in levels], backend='triton'),
        ref_reconstruct(fine, levels))
    expected = torch_kernels.correlation(fine, coarse)
    _close(neighbour_correlation(fine.to(dev), coarse.to(dev), backend='triton'), expected)
    if len(levels) == 2:  # both upsamplings in one launch
        top = torch.randn(B, C, H // 4, W // 4, dtype=torch.float64, generator=g)
        _close(
            superpixel_upsample_hierarchy(
                top.to(dev), [a.to(dev) for a in levels], backend='triton'),
            ref_upsample(ref_upsample(top, levels[1]), levels[0]))
    assert torch.equal(
        hard_superpixels([a.to(dev) for a in levels], backend='triton').cpu(),
        hard_superpixels(levels, backend='torch'))


@pytest.mark.parametrize('size,crop', [(None, None), ((17, 29), None), ((24, 40), (5, 9)),
                                       ((3, 4), (8, 12))])
def test_hard_superpixels_crop_and_resize(size, crop, target):
    """The crop and nearest resize in the same launch equal the torch path, which equals
    cropping and ``F.interpolate(mode='nearest')`` (float32 index arithmetic) afterwards."""
    g = torch.Generator().manual_seed(12)
    levels = [rand_assign(2, 8, 12, generator=g), rand_assign(2, 4, 6, generator=g)]
    for lv in (levels, levels[:1]):
        expected = hard_superpixels(lv, size=size, crop=crop, backend='torch')
        plain = hard_superpixels(lv, backend='torch')
        ch, cw = crop or (8, 12)
        manual = torch.nn.functional.interpolate(
            plain[:, None, :ch, :cw].float(), size=size or (ch, cw), mode='nearest')[:, 0].long()
        assert torch.equal(expected, manual)
        ours = hard_superpixels([a.to(target) for a in lv], size=size, crop=crop, backend='triton')
        assert torch.equal(ours.cpu(), expected)
    with pytest.raises(ValueError, match='crop'):
        hard_superpixels(levels, crop=(9, 12))


@pytest.mark.parametrize('shape', [(1, 3, 4, 8), (2, 1, 8, 4)])
def test_reconstruct_gradients_match_loop_reference(shape, target):
    """Gradients w.r.t. x and both assignments against autograd through the
    pixel-by-pixel loop reference (float64)."""
    g = torch.Generator().manual_seed(9)
    B, C, H, W = shape
    inputs = [
        torch.randn(B, C, H, W, dtype=torch.float64, generator=g),
        rand_assign(B, H, W, generator=g),
        rand_assign(B, H // 2, W // 2, generator=g)
    ]
    grad = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    ref = [t.clone().requires_grad_() for t in inputs]
    ref_reconstruct(ref[0], ref[1:]).backward(grad)
    ours = [t.to(target).requires_grad_() for t in inputs]
    out = superpixel_reconstruct(ours[0], ours[1:], backend='triton')
    _close(out, ref_reconstruct(*[t.detach() for t in inputs[:1]], inputs[1:]))
    out.backward(grad.to(target))
    for r, o in zip(ref, ours):
        _close(o.grad, r.grad)


def test_assignment_module_matches_loop_reference(target):
    torch.manual_seed(4)
    module = SuperpixelAssignment(5, 7, embed_dims=6, tau=0.3, backend='triton').double().to(target)
    fine = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    coarse = torch.randn(2, 7, 3, 4, dtype=torch.float64)
    assign = module(fine.to(target), coarse.to(target)).cpu()
    expected = ref_assignment(module.cpu(), fine, coarse)
    torch.testing.assert_close(assign, expected)
    with torch.no_grad():  # the normalisation folded into the softmax launch
        folded = module.to(target)(fine.to(target), coarse.to(target)).cpu()
    torch.testing.assert_close(folded, expected)
    invalid = ~valid_seed_mask(6, 8).expand_as(assign)
    assert (assign[invalid] == 0).all() and (assign[~invalid] > 0).all()


# ---------------------------------------------------------------------------
# Values and gradients against the torch kernels
# ---------------------------------------------------------------------------
CASES = [  # (B, C, H, W) of x; q(x, [A(H, W), A(H/2, W/2)]); odd batches, C = 1, 3, 5, 19, 64
    (1, 1, 4, 4), (3, 3, 8, 12), (1, 5, 12, 20), (1, 19, 16, 8), (5, 2, 4, 8), (1, 64, 8, 8),
    (1, 3, 64, 96)
]

# float32 on every case, float64 on all but the biggest (interpreter time)
DTYPE_CASES = [(s, torch.float32) for s in CASES] + [(s, torch.float64)
                                                     for s in CASES if s[1] * s[2] * s[3] <= 4096]


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_seed_softmax_normalisation_folded(dtype, target):
    """Without gradients, ``normalize_eps`` folds F.normalize into the softmax launch: the same
    assignment as normalising first (a zero vector included: eps keeps it finite)."""
    g = torch.Generator().manual_seed(13)
    fine = torch.randn(2, 7, 6, 10, dtype=dtype, generator=g)
    coarse = 3 * torch.randn(2, 7, 3, 5, dtype=dtype, generator=g)
    fine[0, :, 1, 2] = 0
    coarse[1, :, 0, 0] = 0
    expected = seed_softmax(
        torch.nn.functional.normalize(fine, dim=1, eps=1e-12),
        torch.nn.functional.normalize(coarse, dim=1, eps=1e-12),
        0.07,
        backend='torch')
    with torch.no_grad():
        folded = seed_softmax(
            fine.to(target), coarse.to(target), 0.07, normalize_eps=1e-12, backend='triton')
    _close(folded, expected, dtype)
    assert torch.isfinite(folded).all()
    with pytest.raises(ValueError, match='normalize_eps'):
        seed_softmax(fine, coarse, 0.07, normalize_eps=0.0)


@pytest.mark.parametrize(
    'shape,dtype',
    DTYPE_CASES,
    ids=lambda v: 'x'.join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_reconstruct_values_and_grads_match_torch(shape, dtype, target, monkeypatch):
    if shape[2] * shape[3] > 1024 and target.type == 'cpu':
        # the interpreter runs one program instance at a time: fewer, bigger
        # tiles for the big grid (the tails are tested with small tiles)
        for name in ('BLOCK_Y', 'CORR_BLOCK_Y', 'SEED_BLOCK_Y', 'FUSED_BLOCK_Y'):
            monkeypatch.setattr(triton_launch, name, 32)
    g = torch.Generator().manual_seed(1)
    B, C, H, W = shape
    x = torch.randn(B, C, H, W, dtype=dtype, generator=g)
    a1 = rand_assign(B, H, W, generator=g).to(dtype)
    a2 = rand_assign(B, H // 2, W // 2, generator=g).to(dtype)
    ref, ours = _both(_q, [x, a1, a2], target)
    for r, o in zip(ref, ours):  # q, dq/dx, dq/dA4, dq/dA8
        assert o.dtype == dtype
        _close(o, r, dtype)


@pytest.mark.parametrize('op', ['upsample', 'downsample', 'correlation', 'softmax', 'hierarchy'])
def test_single_ops_values_and_grads_match_torch(op, target):
    g = torch.Generator().manual_seed(2)
    B, C, H, W = 3, 19, 6, 10
    fine = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    coarse = torch.randn(B, C, H // 2, W // 2, dtype=torch.float64, generator=g)
    assign = rand_assign(B, H, W, generator=g)
    fn, inputs = {
        'upsample': (superpixel_upsample, [coarse, assign]),
        'downsample': (superpixel_downsample, [fine, assign]),
        'correlation': (neighbour_correlation, [fine, coarse]),
        'softmax':
        (lambda f, c, backend: seed_softmax(f, c, 0.5, backend=backend), [fine / 3, coarse / 3]),
        'hierarchy': (_hier, [
            coarse[..., :2, :4],
            rand_assign(B, 8, 16, generator=g),
            rand_assign(B, 4, 8, generator=g)
        ]),
    }[op]
    ref, ours = _both(fn, inputs, target)
    for r, o in zip(ref, ours):
        _close(o, r)


def test_gradcheck_reconstruct(target):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(1, 2, 8, 4, dtype=torch.float64, generator=g)
    a1 = rand_assign(1, 8, 4, generator=g)
    a2 = rand_assign(1, 4, 2, generator=g)
    inputs = [t.to(target).requires_grad_() for t in (x, a1, a2)]
    assert torch.autograd.gradcheck(
        lambda x, a1, a2: superpixel_reconstruct(x, [a1, a2], backend='triton'),
        inputs,
        fast_mode=True)


def test_non_contiguous_and_expanded_inputs(target):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64, generator=g)
    levels = [rand_assign(2, 8, 12, generator=g), rand_assign(2, 4, 6, generator=g)]
    expected = superpixel_reconstruct(x, levels, backend='torch')
    wide = torch.randn(2, 3, 8, 24, dtype=torch.float64, generator=g)
    wide[..., ::2] = x
    variants = [
        wide[..., ::2],  # strided
        x.contiguous(memory_format=torch.channels_last),  # channels_last
        x.transpose(2, 3).contiguous().transpose(2, 3),  # transposed
    ]
    for variant in variants:
        _close(
            superpixel_reconstruct(
                variant.to(target), [a.to(target) for a in levels], backend='triton'), expected)
    # an expanded (stride-0) upstream gradient, from .sum()
    leaf = x.detach().to(target).requires_grad_()
    superpixel_reconstruct(leaf, [a.to(target) for a in levels], backend='triton').sum().backward()
    ref = x.detach().clone().requires_grad_()
    superpixel_reconstruct(ref, levels, backend='torch').sum().backward()
    _close(leaf.grad, ref.grad)


def test_small_blocks_exercise_tails(target, monkeypatch):
    """Tiles that do not divide the grids, and overlapping halo tiles of the
    fused two-level upsampling."""
    for name, value in (('BLOCK_Y', 2), ('BLOCK_X', 4), ('CORR_BLOCK_Y', 2), ('CORR_BLOCK_X', 4),
                        ('SEED_BLOCK_Y', 2), ('SEED_BLOCK_X', 4), ('FUSED_BLOCK_Y',
                                                                   4), ('FUSED_BLOCK_X', 8)):
        monkeypatch.setattr(triton_launch, name, value)
    g = torch.Generator().manual_seed(5)
    # cells 6x10 (3 x 2.5 tiles of 2x4), level-2 seeds 3x5 (1.5 x 1.25 tiles), the middle grid
    # 6x10 in fused tiles of 2x6 owned pixels (3 x 1.67)
    x = torch.randn(2, 5, 12, 20, dtype=torch.float64, generator=g)
    a1 = rand_assign(2, 12, 20, generator=g)
    a2 = rand_assign(2, 6, 10, generator=g)
    ref, ours = _both(_q, [x, a1, a2], target)
    for r, o in zip(ref, ours):
        _close(o, r)
    top = torch.randn(2, 5, 3, 5, dtype=torch.float64, generator=g)
    ref, ours = _both(_hier, [top, a1, a2], target)
    for r, o in zip(ref, ours):
        _close(o, r)
    assert torch.equal(
        hard_superpixels([a1.to(target), a2.to(target)], backend='triton').cpu(),
        hard_superpixels([a1, a2], backend='torch'))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float32(dtype, target):
    """Low-precision inputs: results and gradients come out in the input dtype
    (no conversion pass), computed in float32 (they match the torch kernels
    in float32 on the same rounded inputs to the output's rounding)."""
    g = torch.Generator().manual_seed(6)
    B, C, H, W = 2, 5, 8, 12
    inputs = [
        torch.randn(B, C, H, W, generator=g).to(dtype),
        rand_assign(B, H, W, generator=g).to(dtype),
        rand_assign(B, H // 2, W // 2, generator=g).to(dtype)
    ]
    grad = torch.randn(B, C, H, W, generator=g).to(dtype)
    ours = [t.detach().to(target).requires_grad_() for t in inputs]
    out = superpixel_reconstruct(ours[0], ours[1:], backend='triton')
    assert out.dtype == dtype
    out.backward(grad.to(target))
    ref = [t.detach().float().requires_grad_() for t in inputs]
    expected = superpixel_reconstruct(ref[0], ref[1:], backend='torch')
    expected.backward(grad.float())
    tol = dict(rtol=1e-2, atol=1e-2) if dtype == torch.float16 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(out.float().cpu(), expected.detach(), **tol)
    for o, r in zip(ours, ref):
        assert o.grad.dtype == dtype
        torch.testing.assert_close(o.grad.float().cpu(), r.grad, **tol)
    # the single ops too
    coarse = torch.randn(B, C, H // 2, W // 2, generator=g).to(dtype)
    up = superpixel_upsample(coarse.to(target), ours[1].detach(), backend='triton')
    assert up.dtype == dtype
    torch.testing.assert_close(up.float().cpu(),
                               superpixel_upsample(coarse.float(), inputs[1].float()), **tol)


# ---------------------------------------------------------------------------
# Interpreted and compiled launches in one process
# ---------------------------------------------------------------------------
def _language_state():
    """``{namespace: {attribute: object}}`` for every module of triton.language and every class
    those modules define (what Triton's interpreter patches)."""
    # what the interpreter imports (on first use): importing binds a submodule on its package
    # (tl.semantic, tl.extra.libdevice), an import, not a patch; imported before any snapshot
    import triton.language.extra.libdevice  # noqa: F401
    import triton.runtime.interpreter  # noqa: F401
    state = {}
    for name, module in list(sys.modules.items()):
        if name == 'triton.language' or name.startswith('triton.language.'):
            state[name] = dict(vars(module))
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__.startswith('triton.language'):
                    state[f'{value.__module__}.{value.__qualname__}'] = dict(vars(value))
    return state


def _run_every_kernel(device):
    """All five kernels: forward + backward of q(x, [A4, A8]) (downsampling, fused two-level
    upsampling, correlation), one upsampling, the normalised seed softmax, hard superpixels."""
    g = torch.Generator().manual_seed(21)
    x = torch.randn(1, 3, 8, 8, generator=g).to(device).requires_grad_()
    levels = [rand_assign(1, 8, 8, generator=g), rand_assign(1, 4, 4, generator=g)]
    levels = [a.float().to(device) for a in levels]
    superpixel_reconstruct(x, levels, backend='triton').sum().backward()
    with torch.no_grad():
        superpixel_upsample(
            torch.randn(1, 3, 4, 4, generator=g).to(device), levels[0], backend='triton')
        superpixel_upsample_hierarchy(
            torch.randn(1, 3, 2, 2, generator=g).to(device), levels, backend='triton')
        seed_softmax(
            x,
            torch.randn(1, 3, 4, 4, generator=g).to(device),
            0.07,
            normalize_eps=1e-12,
            backend='triton')
        hard_superpixels(levels, size=(5, 7), backend='triton')


def _recording_jit(records):
    """A stand-in for ``triton_launch._jit`` that launches as usual and appends ``(kernel,
    grid, args, meta)`` of every launch to ``records``."""
    real_jit = triton_launch._jit

    class Recording:

        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):

            def launch(*args, **meta):
                records.append((self.kernel, grid, args, meta))
                real_jit(self.kernel)[grid](*args, **meta)

            return launch

    return Recording


def test_interpreted_launches_leave_triton_language_as_it_was(monkeypatch):
    """Triton's interpreter patches triton.language while it runs a kernel; for the library
    functions a kernel calls (tl.sum, tl.zeros) it never restored tl.core's builtins, and every
    later compile in the process failed. After interpreted launches of all five kernels, every
    attribute of every module of triton.language and of every class they define is the very
    object it was, and none was added or removed."""
    import triton.language as tl

    def named_functions():
        names = {
            'tl.' + n: getattr(tl, n)
            for n in ('sum', 'zeros', 'max', 'maximum', 'minimum', 'sqrt', 'program_id', 'full')
        }
        names.update({
            'tl.core.' + n: getattr(tl.core, n)
            for n in ('program_id', 'full', 'arange', 'load', 'reduce', 'static_range')
        })
        names['tl.tensor.to'] = tl.tensor.to
        return names

    watched = named_functions()
    before = _language_state()
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    _run_every_kernel(torch.device('cpu'))
    after = _language_state()
    now = named_functions()
    assert [k for k in watched if now[k] is not watched[k]] == []
    problems = []
    for namespace, attributes in before.items():
        current = after.get(namespace)
        if current is None:
            problems.append(f'{namespace}: gone')
            continue
        problems += [
            f'{namespace}.{a}: replaced' for a, v in attributes.items()
            if a in current and current[a] is not v
        ]
        problems += [f'{namespace}.{a}: removed' for a in attributes if a not in current]
        problems += [f'{namespace}.{a}: added' for a in current if a not in attributes]
    assert problems == [], (len(problems), problems[:20])


def test_compile_after_interpreted_launches_in_one_process(monkeypatch, tmp_path):
    """Interpreted launches, then a compile (sm_90 PTX and cubin, no GPU needed) of every kernel
    in the same process with an empty Triton cache: was a CompilationError ('ir.value' object has
    no attribute 'dtype') for every kernel not already in the on-disk cache."""
    import triton
    if 'nvidia' not in triton.backends.backends:
        pytest.skip('this triton build has no NVIDIA backend')
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    cache = tmp_path / 'triton_cache'
    monkeypatch.setenv('TRITON_CACHE_DIR', str(cache))
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    records = []
    monkeypatch.setattr(triton_launch, '_jit', _recording_jit(records))
    _run_every_kernel(torch.device('cpu'))
    monkeypatch.delenv('TRITON_INTERPRET')
    configs = {}
    for kernel, _, args, meta in records:
        configs.setdefault(kernel.__name__, (kernel, _signature(kernel, args, meta), meta))
    assert len(configs) == 5, sorted(configs)
    for name, (kernel, (sig, consts, attrs), meta) in configs.items():
        compiled = triton.compile(
            ASTSource(
                fn=triton.jit(kernel),
                signature=sig,
                constexprs=consts,
                attrs={(i, ): [['tt.divisibility', 16]]
                       for i in attrs}),
            target=GPUTarget('cuda', 90, 32),
            options=dict(num_warps=meta['num_warps']))
        assert f'.entry {name}' in compiled.asm['ptx'] and compiled.asm['cubin'], name
    assert any(cache.iterdir())  # compiled here, not read from a cache


def test_compiled_launch_after_an_interpreted_import_is_a_clear_error():
    """Where triton itself was imported with TRITON_INTERPRET=1, its library (tl.sum ...) is
    interpreter-only for the whole process: a compiled launch says so (was an AssertionError
    from deep inside Triton's code generator)."""
    script = ('import torch, triton\n'
              'from mmseg_spixreg.ops import triton_kernels\n'
              'triton.knobs.runtime.interpret = False\n'
              'try:\n'
              '    triton_kernels.upsample(torch.zeros(1, 1, 2, 2), torch.zeros(1, 9, 4, 4))\n'
              'except RuntimeError as error:\n'
              '    print(error)\n')
    proc = subprocess.run([sys.executable, '-c', script],
                          env=dict(os.environ, TRITON_INTERPRET='1'),
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'imported with TRITON_INTERPRET=1' in proc.stdout, (proc.stdout, proc.stderr[-3000:])
    assert "backend='torch'" in proc.stdout


# ---------------------------------------------------------------------------
# float64 scalars
# ---------------------------------------------------------------------------
def test_float64_scalars_reach_the_kernels_in_float64(target):
    """``eps``, ``1 / tau`` and ``normalize_eps`` keep float64 in a float64 run (they were 32-bit
    kernel parameters when compiled, and the interpreter rounded them to float32 too): the
    normaliser of an empty seed is ``eps`` bit for bit (0.1 is no float32 number, 1e-300 is 0 in
    float32), and the seed softmax (1 / 0.07 is no float32 number) and its folded normalisation
    (vectors shorter than normalize_eps = 0.1) match the torch kernels to rtol 1e-12."""
    g = torch.Generator().manual_seed(14)
    fine = torch.randn(2, 3, 6, 8, dtype=torch.float64, generator=g)
    coarse = torch.randn(2, 3, 3, 4, dtype=torch.float64, generator=g)
    empty = torch.zeros(2, 9, 6, 8, dtype=torch.float64)
    for eps in (0.1, 1e-300):
        with triton_kernels.scope(target):
            mean, denom = triton_kernels.weighted_mean(fine.to(target), empty.to(target), eps)
        assert denom.dtype == torch.float64
        assert (denom.cpu() == eps).all(), (eps, denom.unique())
        assert (mean.cpu() == 0).all()
        expected = torch_kernels.weighted_mean(fine, empty, eps)[1]
        assert torch.equal(denom.cpu(), expected)
    tol = dict(rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        seed_softmax(fine.to(target), coarse.to(target), 0.07, backend='triton').cpu(),
        seed_softmax(fine, coarse, 0.07, backend='torch'), **tol)
    short_fine, short_coarse = 0.02 * fine, 0.02 * coarse  # norms about 0.035 < 0.1
    expected = seed_softmax(
        torch.nn.functional.normalize(short_fine, dim=1, eps=0.1),
        torch.nn.functional.normalize(short_coarse, dim=1, eps=0.1),
        0.07,
        backend='torch')
    with torch.no_grad():
        folded = seed_softmax(
            short_fine.to(target),
            short_coarse.to(target),
            0.07,
            normalize_eps=0.1,
            backend='triton')
    torch.testing.assert_close(folded.cpu(), expected, **tol)


def test_float64_scalars_are_64_bit_kernel_parameters(monkeypatch):
    """What a compiled launch passes: Triton's binder (the function its launcher calls to type
    the arguments) types the Python floats ``eps``, ``1 / tau`` and ``normalize_eps`` fp64 (was
    fp32), whatever the tensors' dtype; the compiled float32 kernels convert them once and do no
    other float64 arithmetic (checked on every launch configuration by
    test_kernels_compile_for_nvidia_without_spills)."""
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler.compiler import make_backend
        from triton.runtime.jit import JITFunction, create_function_from_signature
        backend = make_backend(GPUTarget('cuda', 90, 32))
    except (ImportError, RuntimeError) as error:  # Triton internals of 3.8 (torch's pin)
        pytest.skip(f"this triton has no binder to ask ({error})")
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    records = []
    monkeypatch.setattr(triton_launch, '_jit', _recording_jit(records))
    for dtype in (torch.float32, torch.float64):
        fine = torch.randn(1, 3, 4, 8, dtype=dtype)
        coarse = torch.randn(1, 3, 2, 4, dtype=dtype)
        triton_kernels.weighted_mean(fine, rand_assign(1, 4, 8).to(dtype), 0.1)
        with torch.no_grad():
            seed_softmax(fine, coarse, 0.07, normalize_eps=0.1, backend='triton')
    assert len(records) == 4
    for kernel, _, args, meta in records:
        jitted = JITFunction(kernel)  # what triton.jit gives without TRITON_INTERPRET
        binder = create_function_from_signature(jitted.signature, jitted.params, backend)
        specialization = binder(*args, **meta)[1]
        floats = {
            name: spec[0]
            for name, spec, value in zip(jitted.arg_names, specialization, args)
            if isinstance(value, float)
        }
        expected = {'eps'} if kernel is kernels.downsample_kernel else {'scale', 'norm_eps'}
        assert floats == {name: 'fp64' for name in expected}, (kernel.__name__, floats)


# ---------------------------------------------------------------------------
# Grid and size limits
# ---------------------------------------------------------------------------
def test_limits_from_sizes():
    """The checks themselves, with sizes only (nothing allocated): CUDA's grid allows 65535
    blocks along y (tile rows) and z (images); offsets inside an image are int32 (2**31 - 1
    elements per image, the hard superpixels' output included)."""
    check = triton_kernels.check_limits
    rows = 2 * triton_launch._min_block_rows() * 65535  # the most fine rows any kernel can tile
    check((1, 1, rows, 2))
    with pytest.raises(ValueError, match='65535 blocks along y'):
        check((1, 1, rows + 2, 2))
    check((65535, 3, 2, 2))
    with pytest.raises(ValueError, match='batch of 65536 images.*65535 blocks along z'):
        check((65536, 3, 2, 2))
    check((1, 1023, 2048, 1024))  # 2**31 - 2**21 elements per image
    with pytest.raises(ValueError, match=r'more than 2\*\*31 - 1 elements per image'):
        check((1, 1024, 2048, 1024))
    with pytest.raises(ValueError, match=r'more than 2\*\*31 - 1 elements per image'):
        check((1, 9, 16384, 16384 - 2))  # an assignment: 9 H W > 2**31 - 1
    check((2, 9, 64, 64), out_size=(46340, 46340))  # 2147395600 elements per image
    with pytest.raises(ValueError, match=r'output of 46341x46341 has more than 2\*\*31 - 1'):
        check((2, 9, 64, 64), out_size=(46341, 46341))
    check((1, 9, 64, 64), out_size=(2 * triton_launch.BLOCK_Y * 65535, 4))
    with pytest.raises(ValueError, match='65535 blocks along y'):
        check((1, 9, 64, 64), out_size=(2 * triton_launch.BLOCK_Y * 65535 + 1, 4))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        check((4, 4))
    # one launch: the exact grid
    assert triton_launch._tiles(65535 * 4, 8, 65535, 4, 4) == (2, 65535, 65535)
    with pytest.raises(ValueError, match='limit of 65535 blocks along y'):
        triton_launch._tiles(65535 * 4 + 1, 8, 1, 4, 4)
    with pytest.raises(ValueError, match='limit of 65535 blocks along z'):
        triton_launch._tiles(4, 8, 65536, 4, 4)


def test_limits_triton_raises_auto_falls_back(monkeypatch):
    """backend='triton': a ValueError naming the op and the limit, before any launch;
    backend='auto' (Triton opted in, CUDA tensors): the torch kernels instead. Shapes from meta
    tensors (no memory); select_kernels reads only the device's type."""
    monkeypatch.setenv(api.TRITON_ENV, '1')
    cuda = torch.device('cuda')
    small = [torch.empty(2, 3, 8, 8, device='meta'), torch.empty(2, 9, 8, 8, device='meta')]
    batch = [torch.empty(65536, 3, 4, 4, device='meta'), torch.empty(65536, 9, 4, 4, device='meta')]
    tall = [
        torch.empty(1, 1, 262144, 4, device='meta'),
        torch.empty(1, 9, 262144, 4, device='meta')
    ]
    assert api.select_kernels('auto', cuda, 'op', small) is triton_kernels
    for big in (batch, tall):
        assert api.select_kernels('auto', cuda, 'op', big) is torch_kernels
        with pytest.raises(ValueError, match='^op: triton kernels: .*65535 blocks'):
            api.select_kernels('triton', cuda, 'op', big)
    assert api.select_kernels('auto', cuda, 'op', small[1:], out_size=(4, 4)) is triton_kernels
    assert api.select_kernels('auto', cuda, 'op', small[1:], out_size=(46341, 46341)) \
        is torch_kernels
    # through the public ops, interpreted (CPU tensors): the error comes before any launch (the
    # interpreter would run 65536 programs otherwise)
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    x = torch.zeros(65536, 1, 4, 4)
    levels = [torch.zeros(65536, 9, 4, 4), torch.zeros(65536, 9, 2, 2)]
    with pytest.raises(ValueError, match='^superpixel_reconstruct: .*65535 blocks along z'):
        superpixel_reconstruct(x, levels, backend='triton')
    with pytest.raises(ValueError, match='^hard_superpixels: .*65535 blocks along z'):
        hard_superpixels(levels, backend='triton')
    tall_x = torch.zeros(1, 1, 262144, 4)
    with pytest.raises(ValueError, match='^superpixel_downsample: .*65535 blocks along y'):
        superpixel_downsample(tall_x, torch.zeros(1, 9, 262144, 4), backend='triton')
    with pytest.raises(ValueError, match=r'^hard_superpixels: .*46341x46341.*2\*\*31 - 1'):
        hard_superpixels([levels[1][:1]], size=(46341, 46341), backend='triton')
    # auto on CPU: the torch kernels, whatever the size
    assert torch.equal(
        superpixel_reconstruct(x[:2], [a[:2] for a in levels]), torch.zeros(2, 1, 4, 4))


# ---------------------------------------------------------------------------
# Compiled, at scale: realistic sizes, more than 2**31 elements, CUDA's grid limits.
# Skipped without a GPU; benchmarks/run_gpu_checks.sh runs them.
# ---------------------------------------------------------------------------
requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason='CUDA is not available: these run the compiled Triton kernels at GPU sizes '
    '(benchmarks/run_gpu_checks.sh runs them on a GPU)')


def _cuda_assign(B, H, W, dtype=torch.float32, seed=0):
    """A random valid assignment made on the GPU (sizes too big for the CPU helpers)."""
    g = torch.Generator(device='cuda').manual_seed(seed)
    logits = torch.randn(B, 9, H, W, device='cuda', dtype=dtype, generator=g)
    logits.masked_fill_(~valid_seed_mask(H, W, logits.device), float('-inf'))
    return logits.softmax(1)


def _all_ops(x, levels, grad, backend):
    """q(x, levels) and its gradients w.r.t. x and every level, the upsampling hierarchy, the
    normalised seed softmax and the hard superpixels (cropped and resized)."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, *levels)]
    q = superpixel_reconstruct(leaves[0], leaves[1:], backend=backend)
    q.backward(grad)
    H, W = x.shape[-2:]
    with torch.no_grad():
        top = x[:, :, ::4, ::4].contiguous()
        up = superpixel_upsample_hierarchy(top, levels, backend=backend)
        soft = seed_softmax(
            x, x[:, :, ::2, ::2].contiguous(), 0.07, normalize_eps=1e-12, backend=backend)
    spix = hard_superpixels(
        levels, size=(H + H // 2, W + W // 2), crop=(H - H // 4, W), backend=backend)
    return dict(
        q=q.detach(),
        grad_x=leaves[0].grad,
        grad_a4=leaves[1].grad,
        grad_a8=leaves[2].grad,
        hierarchy=up,
        softmax=soft,
        spix=spix)


def _assert_ops_match(ours, ref, tol):
    for name in ref:
        if name == 'spix':
            assert torch.equal(ours[name], ref[name]), name
        else:
            assert ours[name].dtype == ref[name].dtype, name
            torch.testing.assert_close(ours[name], ref[name], **tol, msg=lambda m: f'{name}: {m}')


@requires_cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_realistic_size_matches_torch(dtype):
    """8x32x256x256 (a size of the GPU benchmark): every op, forward and backward, compiled
    Triton against the torch kernels on the same GPU; float64 to rtol 1e-12 (the float64 scalars
    eps, 1 / tau and normalize_eps included)."""
    B, C, H, W = 8, 32, 256, 256
    g = torch.Generator(device='cuda').manual_seed(7)
    x = torch.randn(B, C, H, W, device='cuda', dtype=dtype, generator=g)
    grad = torch.randn(B, C, H, W, device='cuda', dtype=dtype, generator=g)
    levels = [_cuda_assign(B, H, W, dtype, 1), _cuda_assign(B, H // 2, W // 2, dtype, 2)]
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    _assert_ops_match(_all_ops(x, levels, grad, 'triton'), _all_ops(x, levels, grad, 'torch'), tol)


@requires_cuda
def test_cuda_beyond_2_31_elements():
    """Batches of more than 2**31 elements (each image below the int32 limit; the per-image
    base offset is int64): q(x, [A4, A8]) on 3x12x8192x8192 (2.4e9 elements) and hard superpixels
    with a 3x32768x32768 output (3.2e9); the last image, whose offsets pass 2**31, against the
    torch kernels on that image alone."""
    total = torch.cuda.get_device_properties(0).total_memory
    if total < 70 * 2**30:
        pytest.skip(f'needs a GPU with 70 GiB (this one has {total / 2**30:.0f} GiB)')
    B, C, H, W = 3, 12, 8192, 8192
    assert B * C * H * W > 2**31 > max(C, 9) * H * W
    x = torch.randn(B, C, H, W, device='cuda')
    levels = [_cuda_assign(B, H, W, seed=3), _cuda_assign(B, H // 2, W // 2, seed=4)]
    with torch.no_grad():
        q = superpixel_reconstruct(x, levels, backend='triton')
        last = q[-1:].clone()
        del q
        ref = superpixel_reconstruct(x[-1:], [a[-1:] for a in levels], backend='torch')
    torch.testing.assert_close(last, ref, rtol=1e-4, atol=1e-4)
    del x, levels, last, ref
    torch.cuda.empty_cache()
    levels = [_cuda_assign(B, 4096, 4096, seed=5), _cuda_assign(B, 2048, 2048, seed=6)]
    size = (32768, 32768)  # 8x: an exact float32 scale, 2**30 ids per image
    spix = hard_superpixels(levels, size=size, backend='triton')
    assert spix.numel() > 2**31
    last = spix[-1:].clone()
    del spix
    torch.cuda.empty_cache()
    assert torch.equal(last, hard_superpixels([a[-1:] for a in levels], size=size, backend='torch'))


@requires_cuda
def test_cuda_grid_limits(monkeypatch):
    """At CUDA's grid limits (65535 blocks along y and along z) the compiled kernels run and match
    the torch kernels; one past them, backend='triton' is a ValueError naming the limit and
    backend='auto' (Triton opted in) runs the torch kernels."""
    monkeypatch.setenv(api.TRITON_ENV, '1')
    rows = 2 * triton_launch._min_block_rows() * 65535  # fine rows of the tallest grid
    assert rows % 4 == 0
    g = torch.Generator(device='cuda').manual_seed(8)
    for B, C, H, W in [(65535, 2, 4, 4), (1, 2, rows, 4)]:
        x = torch.randn(B, C, H, W, device='cuda', generator=g)
        grad = torch.randn(B, C, H, W, device='cuda', generator=g)
        levels = [_cuda_assign(B, H, W, seed=9), _cuda_assign(B, H // 2, W // 2, seed=10)]
        _assert_ops_match(
            _all_ops(x, levels, grad, 'triton'), _all_ops(x, levels, grad, 'torch'),
            dict(rtol=1e-4, atol=1e-4))
    for B, C, H, W in [(65536, 2, 4, 4), (1, 2, rows + 4, 4)]:
        x = torch.randn(B, C, H, W, device='cuda', generator=g)
        levels = [_cuda_assign(B, H, W, seed=11), _cuda_assign(B, H // 2, W // 2, seed=12)]
        with pytest.raises(ValueError, match='65535 blocks along [yz]'):
            superpixel_reconstruct(x, levels, backend='triton')
        assert torch.equal(
            superpixel_reconstruct(x, levels), superpixel_reconstruct(x, levels, backend='torch'))
        assert torch.equal(hard_superpixels(levels), hard_superpixels(levels, backend='torch'))
    # the hard superpixels' output rows
    levels = [_cuda_assign(1, 64, 4, seed=13), _cuda_assign(1, 32, 2, seed=14)]
    top = 2 * triton_launch.BLOCK_Y * 65535
    assert torch.equal(
        hard_superpixels(levels, size=(top, 4), backend='triton'),
        hard_superpixels(levels, size=(top, 4), backend='torch'))
    with pytest.raises(ValueError, match='65535 blocks along y'):
        hard_superpixels(levels, size=(top + 1, 4), backend='triton')
    assert torch.equal(
        hard_superpixels(levels, size=(top + 1, 4)),
        hard_superpixels(levels, size=(top + 1, 4), backend='torch'))


class _OpRecorder(TorchDispatchMode):
    """Every aten op that runs while active (names), except inside kernel
    launches (Triton's interpreter copies tensors to and from numpy there)."""

    def __init__(self):
        super().__init__()
        self.ops = []
        self.paused = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.paused:
            self.ops.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


# aten ops that allocate or describe tensors without touching their data
_NO_COMPUTE = {
    'empty', 'new_empty', 'empty_like', 'empty_strided', 'detach', 'alias', 'view', 'promote_types'
}


def test_launch_count(target, monkeypatch):
    """Forward + backward of q(x, [A4, A8]) is 7 launches whatever the size,
    with no torch op computing anything between them (only allocations);
    the inference path: both upsamplings in 1 launch, hard superpixels in 1, the normalised
    assignment softmax in 1."""
    launches = []
    recorder = _OpRecorder()
    real_jit = triton_launch._jit

    class Counting:

        def __init__(self, kernel):
            launches.append(kernel.__name__)
            self.kernel = kernel

        def __getitem__(self, grid):

            def launch(*args, **meta):
                recorder.paused = True
                try:
                    real_jit(self.kernel)[grid](*args, **meta)
                finally:
                    recorder.paused = False

            return launch

    monkeypatch.setattr(triton_launch, '_jit', Counting)
    counts = []
    for B, C, H, W in [(1, 1, 4, 4), (3, 11, 8, 12)]:
        x = torch.randn(B, C, H, W, device=target, requires_grad=True)
        levels = [
            rand_assign(B, H, W).float().to(target).requires_grad_(),
            rand_assign(B, H // 2, W // 2).float().to(target).requires_grad_()
        ]
        grad = torch.randn(B, C, H, W, device=target)
        launches.clear()
        recorder.ops.clear()
        with recorder:
            superpixel_reconstruct(x, levels, backend='triton').backward(grad)
        counts.append(list(launches))
        assert set(recorder.ops) <= _NO_COMPUTE, recorder.ops
        with torch.no_grad():
            launches.clear()
            top = torch.randn(B, C, H // 4, W // 4, device=target)
            superpixel_upsample_hierarchy(top, levels, backend='triton')
            assert launches == ['upsample2_kernel']
            launches.clear()
            hard_superpixels(levels, size=(4 * H, 4 * W), crop=(H - 2, W), backend='triton')
            assert launches == ['hard_superpixels_kernel']
            launches.clear()
            seed_softmax(x, top.repeat(1, 1, 2, 2), 0.07, normalize_eps=1e-12, backend='triton')
            assert launches == ['correlation_kernel']
    assert counts[0] == counts[1] and len(counts[0]) == 7, counts


def test_inference_ops_compile_without_graph_breaks(target):
    """The no-grad Triton paths are torch ops (torch.library): torch.compile
    captures a function calling them as one graph (fullgraph=True raises on
    a graph break)."""
    g = torch.Generator().manual_seed(11)
    levels = [rand_assign(1, 8, 16, generator=g).float(), rand_assign(1, 4, 8, generator=g).float()]
    levels = [a.to(target) for a in levels]
    top = torch.randn(1, 3, 2, 4, generator=g).to(target)

    def infer(top, a1, a2):
        logits = superpixel_upsample_hierarchy(top, [a1, a2], backend='triton')
        return logits.argmax(1), hard_superpixels([a1, a2], backend='triton')

    torch._dynamo.reset()
    with torch.no_grad():
        expected = infer(top, *levels)
        compiled = torch.compile(infer, fullgraph=True, backend='eager')(top, *levels)
    for e, c in zip(expected, compiled):
        assert torch.equal(e, c)


# ---------------------------------------------------------------------------
# Backend switch
# ---------------------------------------------------------------------------
def test_backend_selection(monkeypatch):
    cpu = torch.device('cpu')
    assert api.select_kernels('torch', cpu, 'op') is torch_kernels
    assert api.select_kernels('auto', cpu, 'op') is torch_kernels
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setenv(api.TRITON_ENV, '1')
    # auto never sends CPU tensors to the (slow) interpreter
    assert api.select_kernels('auto', cpu, 'op') is torch_kernels
    assert api.select_kernels('triton', cpu, 'op') is triton_kernels


def test_auto_policy_torch_on_cuda_until_verified(monkeypatch):
    """Until benchmarks/run_gpu_checks.sh has passed on a GPU with the current kernels,
    ``backend='auto'`` runs the torch kernels for CUDA tensors; ``backend='triton'`` or
    MMSEG_SPIXREG_TRITON=1 opts in, MMSEG_SPIXREG_TRITON=0 opts out once the default switches.
    (``select_kernels`` reads only the device's type: no GPU needed.)"""
    cuda, cpu = torch.device('cuda'), torch.device('cpu')
    monkeypatch.delenv(api.TRITON_ENV, raising=False)
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    assert backends.TRITON_VERIFIED is False, ('switch the default only in a commit that '
                                               'carries the numbers of a passing GPU run')
    assert not api.auto_uses_triton()
    assert api.select_kernels('auto', cuda, 'op') is torch_kernels
    assert api.select_kernels('triton', cuda, 'op') is triton_kernels
    monkeypatch.setenv(api.TRITON_ENV, '1')
    assert api.select_kernels('auto', cuda, 'op') is triton_kernels
    assert api.select_kernels('auto', cpu, 'op') is torch_kernels
    monkeypatch.setenv(api.TRITON_ENV, '0')
    assert api.select_kernels('auto', cuda, 'op') is torch_kernels
    monkeypatch.setenv(api.TRITON_ENV, 'yes')
    with pytest.raises(ValueError, match="MMSEG_SPIXREG_TRITON must be '1'.*got 'yes'"):
        api.select_kernels('auto', cuda, 'op')
    with pytest.raises(ValueError, match='MMSEG_SPIXREG_TRITON'):
        superpixel_upsample(torch.randn(1, 2, 2, 2), rand_assign(1, 4, 4).float())
    # once verified: auto means Triton on CUDA unless opted out
    monkeypatch.setattr(backends, 'TRITON_VERIFIED', True)
    monkeypatch.delenv(api.TRITON_ENV)
    assert api.select_kernels('auto', cuda, 'op') is triton_kernels
    monkeypatch.setenv(api.TRITON_ENV, '0')
    assert api.select_kernels('auto', cuda, 'op') is torch_kernels


def test_backend_errors(monkeypatch):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    coarse, assign = torch.randn(1, 2, 2, 2), rand_assign(1, 4, 4).float()
    with pytest.raises(ValueError, match='TRITON_INTERPRET=1'):
        superpixel_upsample(coarse, assign, backend='triton')
    with pytest.raises(ValueError, match='backend'):
        superpixel_reconstruct(torch.randn(1, 2, 4, 4), [assign], backend='cuda')
    with pytest.raises(ValueError, match='backend'):
        SuperpixelAssignment(3, 3, embed_dims=48, tau=0.07, backend='fast')
    with pytest.raises(ValueError, match='tau'):
        seed_softmax(torch.randn(1, 2, 4, 4), coarse, 0.0)


# ---------------------------------------------------------------------------
# The compiled path, without a GPU: every launch configuration the ops use
# builds for NVIDIA targets (Triton -> PTX -> ptxas) without register spills,
# and the main (channel) loops read and write the fine grid with vector
# instructions
# ---------------------------------------------------------------------------
_PTR_TYPES = {
    torch.float32: '*fp32',
    torch.float64: '*fp64',
    torch.float16: '*fp16',
    torch.bfloat16: '*bf16',
    torch.int64: '*i64'
}


def _signature(kernel, args, meta):
    """``(signature, constexprs, attributes)`` of a launch of ``kernel`` as
    Triton's launcher specialises it: tensors as pointers (``tt.divisibility``
    16 where 16-byte aligned), ints as i32 (divisible by 16 or not), floats
    as their parameter's annotation (``tl.float64``) or fp32, the rest of
    the parameters constexprs from ``meta``."""
    parameters = inspect.signature(kernel).parameters
    params = list(parameters)
    sig, consts, attrs = {}, {}, []
    for index, (name, value) in enumerate(zip(params, args)):
        annotation = parameters[name].annotation
        if isinstance(value, torch.Tensor):
            sig[name] = _PTR_TYPES[value.dtype]
            aligned = value.data_ptr() % 16 == 0
        elif isinstance(value, float):  # a typed parameter (tl.float64) or fp32
            typed = isinstance(annotation, tl.dtype)
            sig[name], aligned = annotation.name if typed else 'fp32', False
        else:
            sig[name], aligned = 'i32', value % 16 == 0
        if aligned:
            attrs.append(index)
    for name in params[len(args):]:
        sig[name] = 'constexpr'
        consts[name] = meta[name]
    return sig, consts, attrs


def _recorded_launches(monkeypatch):
    """(kernel name, signature, constexprs, attributes, num_warps) of every
    launch configuration of the ops (q(x, A), the upsampling hierarchy, hard
    superpixels, the single ops and seed_softmax, forward + backward, float32
    and bfloat16; q and the seed softmax in float64), recorded, not run. Sizes
    are multiples of 16 and tensors 16-byte aligned, so the attributes are
    those Triton's launcher specialises on (``tt.divisibility`` 16) for such
    inputs."""
    launches = {}

    class Recorder:

        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):

            def launch(*args, **meta):
                sig, consts, attrs = _signature(self.kernel, args, meta)
                key = (self.kernel.__name__, repr(sorted(consts.items())), repr(sig))
                launches[key] = (self.kernel.__name__, sig, consts, attrs, meta['num_warps'])

            return launch

    monkeypatch.setenv('TRITON_INTERPRET', '1')  # lets CPU tensors in
    monkeypatch.setattr(triton_launch, '_jit', Recorder)
    for dtype in (torch.float32, torch.bfloat16):
        for channels in (3, 19):
            x = torch.randn(2, channels, 64, 128, dtype=dtype, requires_grad=True)
            levels = [
                rand_assign(2, 64, 128).to(dtype).requires_grad_(),
                rand_assign(2, 32, 64).to(dtype).requires_grad_()
            ]
            superpixel_reconstruct(x, levels, backend='triton').sum().backward()
            top = torch.randn(2, channels, 16, 32, dtype=dtype, requires_grad=True)
            superpixel_upsample_hierarchy(top, levels, backend='triton').sum().backward()
            with torch.no_grad():
                superpixel_upsample_hierarchy(top, levels, backend='triton')
            coarse = torch.randn(2, channels, 32, 64, dtype=dtype, requires_grad=True)
            superpixel_upsample(coarse, levels[0], backend='triton').sum().backward()
            superpixel_downsample(x, levels[0], backend='triton').sum().backward()
            neighbour_correlation(x, coarse, backend='triton').sum().backward()
        hard_superpixels(levels, backend='triton')
        f = torch.randn(2, 48, 64, 128, requires_grad=True)
        c = torch.randn(2, 48, 32, 64, requires_grad=True)
        seed_softmax(f, c, 0.07, backend='triton').sum().backward()
        with torch.no_grad():
            seed_softmax(f, c, 0.07, normalize_eps=1e-12, backend='triton')
    # float64: q forward + backward and the seed softmax (the kernels with float64 scalars)
    x = torch.randn(2, 3, 64, 128, dtype=torch.float64, requires_grad=True)
    levels = [rand_assign(2, 64, 128).requires_grad_(), rand_assign(2, 32, 64).requires_grad_()]
    superpixel_reconstruct(x, levels, backend='triton').sum().backward()
    f = torch.randn(2, 48, 64, 128, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 48, 32, 64, dtype=torch.float64, requires_grad=True)
    seed_softmax(f, c, 0.07, backend='triton').sum().backward()
    with torch.no_grad():
        seed_softmax(f, c, 0.07, normalize_eps=1e-12, backend='triton')
    monkeypatch.undo()
    return list(launches.values())


# Compiling in a fresh interpreter keeps this check independent of what the other tests of the
# process did (a compile in the same process after interpreted launches is tested on its own:
# test_compile_after_interpreted_launches_in_one_process).
_COMPILE_SCRIPT = r'''
import json, os, re, subprocess, sys, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import triton.language as tl
from mmseg_spixreg.ops.triton_kernels import kernels
arch, launches = int(sys.argv[1]), json.load(sys.stdin)
ptxas = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'ptxas')
gpu = f'sm_{arch}a' if arch >= 90 else f'sm_{arch}'


def channel_loop(ptx):
    """The PTX lines of the kernel's one runtime loop (the channel loop; the
    tap loops are unrolled): from its header label to the branch back."""
    lines = ptx.splitlines()
    heads = [i for i, line in enumerate(lines) if 'Loop Header' in line]
    if len(heads) != 1:
        return None
    start = max(i for i in range(heads[0] + 1) if re.match(r'\$\w+:', lines[i]))
    label = lines[start].split(':')[0]
    back = max(i for i, line in enumerate(lines) if re.search(r'\bbra(\.uni)?\s+' + re.escape(
        label) + ';', line))
    return '\n'.join(lines[start:back + 1])


out = []
for name, sig, consts, attrs, warps in launches:
    consts = {k: tl.dtype(v[1]) if isinstance(v, list) and v[:1] == ['tl.dtype'] else v
              for k, v in consts.items()}
    compiled = triton.compile(
        ASTSource(fn=triton.jit(getattr(kernels, name)), signature=sig, constexprs=consts,
                  attrs={(i, ): [['tt.divisibility', 16]] for i in attrs}),
        target=GPUTarget('cuda', arch, 32), options=dict(num_warps=warps))
    ptx = compiled.asm['ptx']
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'kernel.ptx')
        with open(path, 'w') as f:
            f.write(ptx)
        log = subprocess.run([ptxas, '-v', f'--gpu-name={gpu}', path, '-o',
                              os.path.join(tmp, 'kernel.cubin')],
                             capture_output=True, text=True, check=True).stderr
    loop = channel_loop(ptx)
    out.append(dict(name=name, consts=repr(consts), sig=repr(sig), log=log,
                    cubin=bool(compiled.asm['cubin']),
                    spills=[int(n) for n in re.findall(r'(\d+) bytes spill stores', log)],
                    registers=[int(n) for n in re.findall(r'Used (\d+) registers', log)],
                    loop=loop is not None,
                    loop_vector_loads=bool(loop and re.search(r'ld\.global(\.\w+)*\.v[24]', loop)),
                    loop_vector_stores=bool(loop and re.search(r'st\.global(\.\w+)*\.v[24]', loop)),
                    vector_loads=bool(re.search(r'ld\.global(\.\w+)*\.v[24]', ptx)),
                    f64_params=len(re.findall(r'\.param \.f64 ', ptx)),
                    f64_code=[line.strip() for line in ptx.splitlines()
                              if '.f64' in line and not line.strip().startswith('.param')]))
print(json.dumps(out))
'''

# Kernels whose channel loop reads the fine grid (vector loads expected there) and those whose
# channel loop writes it (vector stores; their fine-grid reads, the assignment tiles, come before
# the loop, and the loop's reads are the per-cell seed gathers: one scalar load per cell and tap)
_LOOP_READS_FINE = ('downsample_kernel', 'correlation_kernel')
_LOOP_WRITES_FINE = ('upsample_kernel', 'upsample2_kernel')


@pytest.mark.parametrize('arch', [75, 90])  # T4 (the paper's GPU), H100/H200
def test_kernels_compile_for_nvidia_without_spills(arch, monkeypatch):
    import triton
    if 'nvidia' not in triton.backends.backends:
        pytest.skip('this triton build has no NVIDIA backend')
    launches = _recorded_launches(monkeypatch)
    import triton.language as tl

    def plain(value):  # JSON for the subprocess; Triton dtypes (the ACC constexpr) by name
        return ['tl.dtype', value.name] if isinstance(value, tl.dtype) else value

    names = {name for name, *_ in launches}
    assert names == {
        'upsample_kernel', 'upsample2_kernel', 'downsample_kernel', 'correlation_kernel',
        'hard_superpixels_kernel'
    }, names
    payload = json.dumps([(name, sig, {
        n: plain(v)
        for n, v in consts.items()
    }, attrs, warps) for name, sig, consts, attrs, warps in launches])
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    proc = subprocess.run(
        [sys.executable, '-c', _COMPILE_SCRIPT, str(arch)],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(launches)
    for r, (_, sig, *_) in zip(results, launches):
        where = (r['name'], r['consts'], r['sig'])
        assert r['cubin'], where
        assert r['spills'] and not any(r['spills']), (where, r['log'])
        # float64 scalars (eps, 1 / tau, normalize_eps) are 64-bit parameters; a float32 kernel
        # converts them once and computes nothing else in float64
        assert r['f64_params'] == list(sig.values()).count('fp64'), where
        if '*fp64' not in sig.values():
            f64_code = r['f64_code']
            assert all(line.startswith('cvt.rn.f32.f64') for line in f64_code), (where, f64_code)
        if arch == 90 and '*bf16' not in sig.values() and '*fp64' not in sig.values():
            assert r['vector_loads'], where  # the assignment / fine tiles
            if r['name'] in _LOOP_READS_FINE:
                assert r['loop_vector_loads'], where
            if r['name'] in _LOOP_WRITES_FINE:
                assert r['loop_vector_stores'], where
