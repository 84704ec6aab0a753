# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The public superpixel ops export themselves: under ``torch.export`` every backend runs the
torch kernels as plain tensor ops (no autograd function, no custom op), and the exported graph,
run in onnxruntime at other sizes than it was traced at, gives the eager results."""
import pytest
import torch

from mmseg_spixreg.ops import (hard_superpixels, seed_softmax, superpixel_upsample,
                               superpixel_upsample_hierarchy, valid_seed_mask)
from mmseg_spixreg.ops.torch_kernels import valid_seeds

pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.mark.parametrize('shape', [(1, 1, 2, 2), (2, 3, 6, 10), (1, 48, 10, 4), (3, 2, 8, 6)])
def test_valid_seeds_equal_layout_mask(shape):
    _, C, H, W = shape
    assert torch.equal(valid_seeds(torch.zeros(2, C, H // 2, W // 2)), valid_seed_mask(H, W))


class _TwoLevels(torch.nn.Module):
    """eq. 1 softmax at two levels, eq. 2 through both, hard superpixels cropped and resized:
    what HCFCN exports."""

    def __init__(self, backend):
        super().__init__()
        self.backend = backend

    def forward(self, f4, f8, f16, logits):
        b = self.backend
        a4 = seed_softmax(f4, f8, 0.07, normalize_eps=1e-12, backend=b)
        a8 = seed_softmax(f8, f16, 0.07, normalize_eps=1e-12, backend=b)
        up = superpixel_upsample_hierarchy(logits, [a4, a8], backend=b)
        one = superpixel_upsample(logits, a8, backend=b)
        H, W = f4.shape[-2:]
        spix = hard_superpixels([a4, a8], size=(4 * H, 4 * W), crop=(H - 1, W), backend=b)
        return up, one, spix


def _inputs(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(b, c, k * h, k * w, generator=g) for c, k in ((8, 4), (8, 2), (8, 1), (5, 1)))


def _export(backend):
    h = torch.export.Dim('h', min=2, max=256)
    w = torch.export.Dim('w', min=2, max=256)
    b = torch.export.Dim('b', min=1, max=8)
    shapes = tuple({0: b, 2: k * h, 3: k * w} for k in (4, 2, 1, 1))
    return torch.export.export(_TwoLevels(backend), _inputs(2, 3, 5, 0), dynamic_shapes=shapes)


@pytest.mark.parametrize('backend', ['auto', 'triton'])
def test_exported_graph_is_plain_aten(backend):
    """Any backend exports the torch kernels: only aten ops in the graph, same numbers."""
    program = _export(backend)
    targets = {str(n.target) for n in program.graph.nodes if n.op == 'call_function'}
    assert all(t.startswith('aten.') or t.startswith('<built-in') for t in targets), targets
    x = _inputs(3, 4, 6, 1)
    for got, want in zip(program.module()(*x), _TwoLevels('torch')(*x)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_onnx_export_of_the_ops_equals_eager(tmp_path):
    """Exported once with dynamic batch and sizes, run in onnxruntime at two other sizes."""
    ort = pytest.importorskip('onnxruntime', reason='requirements/deploy.txt not installed')
    pytest.importorskip('onnxscript', reason='requirements/deploy.txt not installed')
    names = ['f4', 'f8', 'f16', 'logits']
    program = torch.onnx.export(
        _export('auto'), dynamo=True, opset_version=19, input_names=names, verbose=False)
    ops = {n.op_type for n in program.model_proto.graph.node}
    assert 'Softmax' in ops and 'ArgMax' in ops
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=['CPUExecutionProvider'])
    for b_, h_, w_ in [(1, 5, 7), (3, 16, 12)]:
        x = _inputs(b_, h_, w_, 1)
        up, one, spix = session.run(None, {k: v.numpy() for k, v in zip(names, x)})
        ref_up, ref_one, ref_spix = _TwoLevels('torch')(*x)
        assert up.shape == (b_, 5, 4 * h_, 4 * w_)
        torch.testing.assert_close(torch.from_numpy(up), ref_up, rtol=0, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(one), ref_one, rtol=0, atol=1e-5)
        assert torch.equal(torch.from_numpy(spix), ref_spix)
