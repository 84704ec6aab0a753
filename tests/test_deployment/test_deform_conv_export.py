# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""DCNv2 (mmcv's modulated deformable convolution) exports to ONNX DeformConv with the same
numbers: offset layout, mask, stride / padding / dilation, bias."""
import pytest
import torch
import torch.nn as nn

from mmseg_spixreg.deployment.deform_conv_export import deform_conv_onnx
from mmseg_spixreg.models.utils import ZeroInitModulatedDeformConv2d

pytestmark = pytest.mark.usefixtures('single_thread')


def _dcn(stride, padding, dilation, bias, seed=0):
    """A DCNv2 layer with random, clearly non-zero offsets (up to a few
    pixels, different in y and x) and masks: a layout mix-up of (dy, dx) or of the kernel taps
    changes the output."""
    torch.manual_seed(seed)
    layer = ZeroInitModulatedDeformConv2d(
        6, 10, 3, stride=stride, padding=padding, dilation=dilation, bias=bias)
    with torch.no_grad():
        layer.conv_offset.weight.normal_(0, 0.3)
        layer.conv_offset.bias.uniform_(-2, 2)
        if bias:
            layer.bias.normal_()
    return layer.eval()


GEOMETRIES = [((2, 2), (1, 1), (1, 1), False), ((1, 1), (1, 1), (1, 1), True),
              ((2, 2), (2, 2), (2, 2), True)]


@pytest.mark.parametrize('stride,padding,dilation,bias', GEOMETRIES)
def test_exported_layer_runs_the_custom_op(stride, padding, dilation, bias):
    """Under torch.export the layer calls the custom op itself (mmcv's kernel): same numbers."""
    layer = _dcn(stride, padding, dilation, bias)
    x = torch.randn(2, 6, 13, 18)
    with torch.no_grad():
        program = torch.export.export(layer, (x, ))
        exported, ref = program.module()(x), layer(x)
    assert torch.equal(exported, ref)
    targets = [str(n.target) for n in program.graph.nodes if n.op == 'call_function']
    assert 'mmseg_spixreg.modulated_deform_conv2d.default' in targets


@pytest.mark.parametrize('stride,padding,dilation,bias', GEOMETRIES)
def test_onnx_deform_conv_equals_mmcv(stride, padding, dilation, bias):
    ort = pytest.importorskip('onnxruntime', reason='requirements/deploy.txt not installed')
    pytest.importorskip('onnxscript', reason='requirements/deploy.txt not installed')
    layer = _dcn(stride, padding, dilation, bias)
    exported = nn.Sequential(layer)
    rows = torch.export.Dim('rows', min=4, max=512)
    cols = torch.export.Dim('cols', min=4, max=512)
    with torch.no_grad():
        program = torch.onnx.export(
            exported, (torch.randn(2, 6, 16, 20), ),
            dynamo=True,
            opset_version=19,
            input_names=['x'],
            dynamic_shapes=({
                2: rows,
                3: cols
            }, ),
            custom_translation_table={
                torch.ops.mmseg_spixreg.modulated_deform_conv2d.default: deform_conv_onnx
            },
            verbose=False)
    nodes = [n.op_type for n in program.model_proto.graph.node]
    assert nodes.count('DeformConv') == 1
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=['CPUExecutionProvider'])
    for h, w in [(16, 20), (23, 31)]:
        x = torch.randn(2, 6, h, w)
        with torch.no_grad():
            ref = layer(x)
        out = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
        # the offsets matter: a plain convolution differs clearly
        plain = nn.functional.conv2d(x, layer.weight, layer.bias, stride, padding, dilation)
        assert (plain - ref).abs().max() > 0.1
