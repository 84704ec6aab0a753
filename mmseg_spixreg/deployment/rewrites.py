# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""While a model is exported, its calls into opaque kernels go to traceable equivalents.

The model's modules call the superpixel ops (:mod:`mmseg_spixreg.ops`: blocked kernels inside
autograd functions) and mmcv's ``modulated_deform_conv2d`` (a C++ extension) by name from
their own Python modules. :func:`export_rewrites` finds, in the defining module of every
module class of the model (and of its base classes), the names bound to one of those functions
and rebinds them, for the duration of the ``with`` block only, to the function of
:data:`TRACEABLE` (equal numbers, traceable by ``torch.export``). Everything else of the model
(checks, padding, crops, the segmentor's ``encode_decode``, the heads' ``predict_by_feat``) runs
as written, so the export follows the model code without a copy of it (mmdeploy's function
rewriting, scoped to one export).
"""
import contextlib
import sys
from typing import Callable, Dict, Iterator, List, Tuple

import torch.nn as nn
from mmcv.ops import ModulatedDeformConv2d, modulated_deform_conv2d

from .. import ops
from .deform_conv_export import modulated_deform_conv2d_traceable
from .superpixel_export import (hard_superpixels_traceable, neighbour_correlation_traceable,
                                seed_softmax_traceable, superpixel_upsample_hierarchy_traceable,
                                superpixel_upsample_traceable)


def _without_backend(fn: Callable) -> Callable:
    """``fn`` accepting (and ignoring) the ops' ``backend`` keyword."""

    def traceable(*args, backend: str = 'auto', **kwargs):
        return fn(*args, **kwargs)

    traceable.__name__ = fn.__name__
    traceable.__doc__ = fn.__doc__
    return traceable


# opaque function -> its traceable equivalent (same signature)
TRACEABLE: Dict[Callable, Callable] = {
    ops.superpixel_upsample: _without_backend(superpixel_upsample_traceable),
    ops.neighbour_correlation: _without_backend(neighbour_correlation_traceable),
    ops.seed_softmax: _without_backend(seed_softmax_traceable),
    ops.hard_superpixels: _without_backend(hard_superpixels_traceable),
    modulated_deform_conv2d: modulated_deform_conv2d_traceable,
}
if hasattr(ops.superpixel, 'superpixel_upsample_hierarchy'):
    TRACEABLE[ops.superpixel.superpixel_upsample_hierarchy] = \
        _without_backend(superpixel_upsample_hierarchy_traceable)


def check_traceable_modules(model: nn.Module) -> None:
    """Raise ValueError naming a module of ``model`` that no rewrite makes traceable: an mmcv
    C++ op other than the modulated deformable convolutions (DCNv2)."""
    for name, module in model.named_modules():
        cls = type(module)
        if cls.__module__.startswith('mmcv.ops') and not isinstance(module, ModulatedDeformConv2d):
            raise ValueError(
                f'{name} ({cls.__module__}.{cls.__name__}) is an mmcv C++ op that cannot be '
                'exported; among mmcv\'s ops only the modulated deformable convolutions (DCNv2: '
                'ModulatedDeformConv2d and its subclasses) have an ONNX translation here')


def _rewrite_targets(model: nn.Module) -> List[Tuple[object, str, Callable]]:
    """(python module, name, traceable function) for every name bound to an opaque function in
    the defining modules of the model's module classes."""
    modules = {}
    for module in model.modules():
        for cls in type(module).__mro__:
            py = sys.modules.get(cls.__module__)
            if py is not None:
                modules[cls.__module__] = py
    targets = []
    for py in modules.values():
        for name, value in list(vars(py).items()):
            if callable(value) and not isinstance(value, type):
                try:
                    replacement = TRACEABLE.get(value)
                except TypeError:  # unhashable
                    continue
                if replacement is not None:
                    targets.append((py, name, replacement))
    return targets


@contextlib.contextmanager
def export_rewrites(model: nn.Module) -> Iterator[None]:
    """Context in which ``model`` calls the traceable functions of :data:`TRACEABLE` instead of
    the opaque kernels (see the module docstring); the names are restored on exit.

    Args:
        model (nn.Module): the model to export (checked with :func:`check_traceable_modules`).
    """
    check_traceable_modules(model)
    targets = _rewrite_targets(model)
    saved = [(py, name, getattr(py, name)) for py, name, _ in targets]
    try:
        for py, name, replacement in targets:
            setattr(py, name, replacement)
        yield
    finally:
        for py, name, original in saved:
            setattr(py, name, original)
