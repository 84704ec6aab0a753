# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""FLOPs and parameters of a segmentor, as mmseg's ``tools/analysis_tools/get_flops.py``.

Usage::

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]

Works with every config (mmseg's own script stops with ``input_shape and inputs cannot be both
set`` under mmengine 0.10.7). As in mmseg, the model (random weights, auxiliary heads removed)
runs ``forward(inputs, mode='tensor')`` on one random image of ``--shape`` (default 2048x1024,
mmseg's), i.e. the logits of the decode head before the final resize, and mmengine's
``FlopAnalyzer`` (fvcore's counter: a FLOP is one multiply-add) counts each operator of the traced
graph. Its handles cover the standard operators (convolutions, matrix products, batch norm,
upsampling, ...); the custom autograd functions appear in the trace as ``prim::PythonOp`` nodes,
which mmengine skips. This script adds one handle for each of them, computed from the traced
input / output shapes (B batch, C channels, H x W the fine grid, h x w the coarse grid, 9 seeds
per pixel):

* DCNv2 (mmcv's ``ModulatedDeformConv2dFunction``): the convolution's multiply-adds, as for a
  plain convolution (B * C_out * H_out * W_out * C_in / groups * k_h * k_w), plus the sampling:
  4 multiply-adds of the bilinear interpolation and 1 of the modulation mask per sampled value
  (B * C_in * k_h * k_w * H_out * W_out values);
* superpixel upsampling (eq. 2): 9 per output value, B * C * H * W * 9, for each level of a
  hierarchy upsampled in one node (the CPU autograd function and the Triton path's torch op);
* superpixel downsampling (the weighted seed means): 9 per input value for the numerators, 9 per
  pixel for the seed masses, 1 division per output value: 9 B C H W + 9 B H W + B C h w;
* reconstruction q(x, A): the downsampling through every level, then the upsampling back;
* neighbour correlation (the assignment logits of eq. 1): C per (pixel, seed), 9 B C H W;
* seed softmax (eq. 1): the correlation plus 3 per (pixel, seed) (scale + exp, sum, division).

Operators still without a handle (element-wise operations, which fvcore does not count either)
are listed under "not counted" with how often they occur.
"""
import argparse
from collections import Counter
from typing import Any, List

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_spixreg  # noqa: F401  (registers the plug-in)

NUM_SEEDS = 9


def _numel(shape: List[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def dcnv2_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """Modulated deformable convolution: convolution + bilinear sampling + modulation."""
    x, weight = get_shape(inputs[0]), get_shape(inputs[3])
    out = get_shape(outputs[0])
    c_out, c_in_per_group, kh, kw = weight
    batch, _, h_out, w_out = out
    conv = batch * c_out * h_out * w_out * c_in_per_group * kh * kw
    sampled = batch * x[1] * kh * kw * h_out * w_out
    return conv + sampled * (4 + 1)


def upsample_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """(B, C, h, w) coarse x (B, 9, H, W) assignment -> (B, C, H, W): 9 per output value."""
    return _numel(get_shape(outputs[0])) * NUM_SEEDS


def upsample_hierarchy_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """(B, C, h, w) coarse through assignments A_1..A_L (finest first) -> (B, C, H_1, W_1): the
    upsampling of every level, 9 per value of each level's output (B * C * H_l * W_l * 9)."""
    batch, channels = get_shape(inputs[0])[:2]
    assignments = list(inputs[1:])
    if len(assignments) == 1 and assignments[0].node().kind() == 'prim::ListConstruct':
        assignments = list(assignments[0].node().inputs())  # the torch.library op takes a list
    return sum(batch * channels * _numel(get_shape(a)[-2:]) * NUM_SEEDS for a in assignments)


def _downsample(fine: List[int], coarse: List[int]) -> int:
    batch, channels, height, width = fine
    return (NUM_SEEDS * batch * channels * height * width + NUM_SEEDS * batch * height * width +
            _numel(coarse))


def downsample_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """(B, C, H, W) fine x (B, 9, H, W) assignment -> (B, C, h, w) weighted seed means."""
    return _downsample(get_shape(inputs[0]), get_shape(outputs[0]))


def reconstruct_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """q(x, A): down through every level (finest first), then up again."""
    shape = list(get_shape(inputs[0]))
    total = 0
    for assign in inputs[1:]:
        height, width = get_shape(assign)[-2:]
        coarse = shape[:2] + [(height + 1) // 2, (width + 1) // 2]
        fine = shape[:2] + [height, width]
        total += _downsample(fine, coarse) + _numel(fine) * NUM_SEEDS
        shape = coarse
    return total


def correlation_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """(B, C, H, W) fine x (B, C, h, w) coarse -> (B, 9, H, W): C per (pixel, seed)."""
    return _numel(get_shape(outputs[0])) * get_shape(inputs[0])[1]


def seed_softmax_flops(inputs: List[Any], outputs: List[Any]) -> int:
    """Correlation + the 9-seed softmax (scale + exp, sum, division per value)."""
    return correlation_flops(inputs, outputs) + 3 * _numel(get_shape(outputs[0]))


# traced name (prim::PythonOp.<autograd Function>) -> (handle, row name in the table)
CUSTOM_OPS = {
    'prim::PythonOp.ModulatedDeformConv2dFunction': (dcnv2_flops, 'DCNv2 (mmcv)'),
    'prim::PythonOp.SuperpixelUpsampleFn': (upsample_flops, 'superpixel upsample'),
    'prim::PythonOp.SuperpixelUpsampleHierarchyFn':
    (upsample_hierarchy_flops, 'superpixel upsample'),
    'mmseg_spixreg::upsample_hierarchy': (upsample_hierarchy_flops, 'superpixel upsample'),
    'prim::PythonOp.SuperpixelDownsampleFn': (downsample_flops, 'superpixel downsample'),
    'prim::PythonOp.SuperpixelReconstructFn': (reconstruct_flops, 'superpixel reconstruct'),
    'prim::PythonOp.NeighbourCorrelationFn': (correlation_flops, 'neighbour correlation'),
    'prim::PythonOp.SeedSoftmaxFn': (seed_softmax_flops, 'seed softmax (eq. 1)'),
}


def parse_args():
    parser = argparse.ArgumentParser(description='Get the FLOPs of a segmentor')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[2048, 1024], help='input image size (H W)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value (see mmseg tools/train.py)')
    return parser.parse_args()


def input_shape_of(shape: List[int]) -> tuple:
    if len(shape) == 1:
        return (3, shape[0], shape[0])
    if len(shape) == 2:
        return (3, ) + tuple(shape)
    raise ValueError(f'--shape takes H or H W, got {shape}')


def build_model(cfg: Config) -> torch.nn.Module:
    """The config's model with random weights, no pretrained download, no auxiliary head."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    if hasattr(model, 'auxiliary_head'):
        model.auxiliary_head = None
    return revert_sync_batchnorm(model).eval()


def count_flops(model: torch.nn.Module, input_shape: tuple) -> dict:
    """FLOPs per operator (with the custom handles), total, parameters and the skipped ops.

    Args:
        model (nn.Module): an mmseg segmentor in eval mode.
        input_shape (tuple): (3, H, W).

    Returns:
        dict: ``flops`` (int), ``params`` (int), ``by_operator`` (dict name -> FLOPs, custom
        operators under their table names), ``not_counted`` (dict operator -> occurrences).
    """
    size = tuple(input_shape[1:])
    sample = SegDataSample(metainfo=dict(ori_shape=size, img_shape=size, pad_shape=size))
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(*input_shape) * 255], data_samples=[sample]), False)
    analyzer = FlopAnalyzer(model, (data['inputs'], ))
    for op, (handle, _) in CUSTOM_OPS.items():
        analyzer.set_op_handle(op, handle)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        by_operator = dict(analyzer.by_operator())
        total = analyzer.total()
        not_counted = Counter(analyzer.unsupported_ops())
    # the analyzer names an operator without its namespace (prim::PythonOp.X -> PythonOp.X)
    names = {op.split('::', 1)[1]: name for op, (_, name) in CUSTOM_OPS.items()}
    rows = Counter()
    for op, flops in by_operator.items():
        rows[names.get(op, op)] += flops
    by_operator = dict(rows)
    return dict(
        flops=total,
        params=parameter_count(model)[''],
        by_operator=by_operator,
        not_counted=dict(not_counted))


def format_count(n: float) -> str:
    for unit, size in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if n >= size:
            return f'{n / size:.3f}{unit}'
    return str(int(n))


def main():
    args = parse_args()
    input_shape = input_shape_of(args.shape)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    result = count_flops(model, input_shape)
    split_line = '=' * 30
    print(f'{split_line}\nInput shape: {input_shape[1:]}\nFlops: {format_count(result["flops"])}'
          f'\nParams: {format_count(result["params"])}\n{split_line}')
    print('FLOPs by operator (one multiply-add = 1):')
    for name, flops in sorted(result['by_operator'].items(), key=lambda kv: -kv[1]):
        print(f'  {name:<28} {format_count(flops):>10}')
    if result['not_counted']:
        print('not counted (no FLOP handle; element-wise ops as in fvcore): ' +
              ', '.join(f'{op} x{n}' for op, n in sorted(result['not_counted'].items())))


if __name__ == '__main__':
    main()
