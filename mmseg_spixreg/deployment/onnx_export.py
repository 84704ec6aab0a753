# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Export a segmentor to ONNX (torch's ``torch.export``-based exporter) and verify the exported
model in onnxruntime against the PyTorch model.

The ONNX model (one graph, standard opset-19 operators, DCNv2 as ``DeformConv``):

* input ``image``: (B, 3, H, W) float32, values in [0, 255], channel order in the metadata
  (``channel_order``, RGB for every config here); a static model takes the export shape
  (any size: the test-time padding is inside), a dynamic one (``dynamic=True``) any batch and
  any H, W that are multiples of 16 (not for models with adaptive pooling to a grid larger than
  1x1, such as PSPNet's pyramid pooling: a clear error, see :func:`check_dynamic_exportable`);
* output ``logits``: (B, num_classes, H, W) float32 (``seg_logits`` of ``model.test_step``);
* output ``superpixels`` (HCFCN models): (B, H, W) int64 hard superpixel ids
  (``pred_superpixels``).
"""
import json
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmseg.structures import SegDataSample

from .checks import check_dynamic_exportable
from .deform_conv_export import deform_conv_onnx
from .export_wrapper import ExportWrapper, export_inputs

# onnxruntime 1.31 reads ONNX IR versions up to 13 (see requirements/deploy.txt)
MAX_IR_VERSION = 13
MIN_OPSET = 19  # DeformConv with the DCNv2 mask
# what verify_onnx asks of an fp32 export
LOGIT_TOLERANCE = 1e-4
MIN_ARGMAX_AGREEMENT = 0.999


def export_onnx(model: nn.Module,
                out_file: str,
                shape: Sequence[int] = (512, 1024),
                dynamic: bool = False,
                opset: int = MIN_OPSET,
                metadata: Optional[Dict[str, str]] = None) -> ExportWrapper:
    """Export ``model``'s whole-image inference to ``out_file``.

    Args:
        model (nn.Module): an mmseg segmentor, e.g. from ``mmseg.apis.init_model`` (CPU).
        out_file (str): path of the .onnx file.
        shape (Sequence[int]): (H, W) of the example input (the input size of a static model).
        dynamic (bool): dynamic batch, H and W (H and W multiples of 16; ``shape`` must be too).
        opset (int): ONNX opset (>= 19).
        metadata (dict[str, str], optional): extra ``metadata_props``.

    Returns:
        ExportWrapper: the exported module (the PyTorch side of the same computation).
    """
    if opset < MIN_OPSET:
        raise ValueError(f'--opset {opset}: DeformConv (DCNv2 with mask) needs opset >= '
                         f'{MIN_OPSET}')
    height, width = (int(v) for v in shape)
    if height < 16 or width < 16:
        raise ValueError(f'--shape {height} {width}: both must be >= 16')
    if dynamic and (height % 16 or width % 16):
        raise ValueError(f'--dynamic: the example --shape {height} {width} must be multiples of '
                         '16 (a dynamic model takes H, W multiples of 16)')
    if dynamic:
        check_dynamic_exportable(model)
    model.eval()
    exportable = ExportWrapper(model).eval()
    batch = 2 if dynamic else 1  # torch.export specialises a dimension of size 1
    example = export_inputs(batch, height, width)
    dynamic_shapes = None
    if dynamic:
        rows = torch.export.Dim('rows16', min=1, max=1024)
        cols = torch.export.Dim('cols16', min=1, max=1024)
        dynamic_shapes = ({
            0: torch.export.Dim('batch', min=1, max=256),
            2: 16 * rows,
            3: 16 * cols
        }, )
    output_names = ['logits', 'superpixels'] if exportable.with_superpixels else ['logits']
    with torch.no_grad():
        program = torch.onnx.export(
            exportable, (example, ),
            dynamo=True,
            opset_version=opset,
            input_names=['image'],
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            custom_translation_table={
                torch.ops.mmseg_spixreg.modulated_deform_conv2d.default: deform_conv_onnx
            },
            verbose=False)
    proto = program.model_proto
    if dynamic:
        _check_outputs_dynamic(proto)
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    props = dict(
        channel_order=exportable.channel_order,
        input='image: (B, 3, H, W) float32 in [0, 255], channel order ' + exportable.channel_order +
        (', H and W multiples of 16' if dynamic else f', H={height}, W={width}'),
        outputs=json.dumps(output_names),
        num_classes=str(exportable.num_classes))
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes:
        props['classes'] = json.dumps(list(classes))
    props.update(metadata or {})
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    import onnx
    onnx.checker.check_model(proto)
    onnx.save(proto, out_file)
    return exportable


def _check_outputs_dynamic(proto) -> None:
    """Raise ValueError naming an output of a dynamic export whose H or W was fixed while
    tracing (model code turned a traced size into a Python int, e.g. ``int(x.shape[2])``): the
    model would give that size at every input size."""
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        fixed = [i for i in (len(dims) - 2, len(dims) - 1) if not dims[i].dim_param]
        if fixed:
            sizes = [dims[i].dim_value for i in fixed]
            raise ValueError(
                f'--dynamic: output {output.name!r} has fixed size {sizes} in dimension(s) '
                f'{fixed}: the model code turned a traced size into a Python number (e.g. '
                'int(t.shape[-1])), so the exported model would give that size at every input '
                'size; pass the sizes on as they are')


def onnxruntime_session(onnx_file: str, threads: int = 0):
    """An onnxruntime CPU session (``threads`` intra-op threads; 0: onnxruntime's default)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])


def pytorch_predictions(model: nn.Module, image: np.ndarray, channel_order: str) -> dict:
    """The reference: ``model.test_step`` (data preprocessor, ``predict``, postprocessing) on
    one image, as ``mmseg.apis.inference_model`` runs it on a loaded image.

    Args:
        model (nn.Module): the segmentor.
        image (np.ndarray): (3, H, W) float32 in the network's channel order.
        channel_order (str): that order ('RGB' / 'BGR').

    Returns:
        dict: ``logits`` (C, H, W) float32 and ``superpixels`` (H, W) int64 (HCFCN models).
    """
    pre = model.data_preprocessor
    loaded = getattr(pre, 'input_channel_order', 'bgr').upper()
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if loaded != channel_order:
        tensor = tensor.flip(0)  # what the pipeline delivers; the preprocessor swaps it back
    h, w = image.shape[-2:]
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    with torch.no_grad():
        result = model.test_step(dict(inputs=[tensor], data_samples=[sample]))[0]
    out = dict(logits=result.seg_logits.data.float().numpy())
    if 'pred_superpixels' in result:
        out['superpixels'] = result.pred_superpixels.data[0].numpy()
    return out


def compare_predictions(onnx_out: dict, torch_out: dict) -> dict:
    """Parity numbers of one image: ``max_abs_logit_diff``, ``argmax_agreement`` (fraction of
    pixels), ``superpixels_identical`` (fraction of pixels; None without superpixels)."""
    diff = np.abs(onnx_out['logits'] - torch_out['logits'])
    agree = onnx_out['logits'].argmax(0) == torch_out['logits'].argmax(0)
    spix = None
    if 'superpixels' in torch_out:
        spix = float(np.mean(onnx_out['superpixels'] == torch_out['superpixels']))
    return dict(
        max_abs_logit_diff=float(diff.max()),
        argmax_agreement=float(agree.mean()),
        superpixels_identical=spix,
        max_abs_logit=float(np.abs(torch_out['logits']).max()))


def verify_onnx(model: nn.Module, onnx_file: str, images: List[np.ndarray],
                channel_order: str) -> List[dict]:
    """Run ``onnx_file`` in onnxruntime (CPU) and ``model`` in PyTorch on the same images.

    Args:
        model (nn.Module): the segmentor that was exported.
        onnx_file (str): the exported model.
        images (list[np.ndarray]): (3, H, W) float32 images in [0, 255], channel order
            ``channel_order`` (sizes the model accepts).
        channel_order (str): 'RGB' / 'BGR' (the exported model's ``channel_order``).

    Returns:
        list[dict]: per image, :func:`compare_predictions` plus ``shape`` and ``passed`` (max
        |logit diff| <= :data:`LOGIT_TOLERANCE`, argmax agreement >=
        :data:`MIN_ARGMAX_AGREEMENT`, identical superpixels).
    """
    session = onnxruntime_session(onnx_file)
    names = [o.name for o in session.get_outputs()]
    reports = []
    for image in images:
        outs = session.run(None, {'image': image[None].astype(np.float32)})
        onnx_out = {name: value[0] for name, value in zip(names, outs)}
        report = compare_predictions(onnx_out, pytorch_predictions(model, image, channel_order))
        report['shape'] = tuple(int(v) for v in image.shape[-2:])
        report['passed'] = bool(report['max_abs_logit_diff'] <= LOGIT_TOLERANCE
                                and report['argmax_agreement'] >= MIN_ARGMAX_AGREEMENT
                                and report['superpixels_identical'] in (None, 1.0))
        reports.append(report)
    return reports
