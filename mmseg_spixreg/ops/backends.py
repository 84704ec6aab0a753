# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The backend switch of the superpixel operators: which kernel set runs.

The ``backend`` argument (keyword-only) of every operator of :mod:`.superpixel`
chooses the kernels:

* ``'auto'`` (default): :mod:`.torch_kernels`, except for CUDA tensors when
  the Triton kernels are enabled (:func:`auto_uses_triton`: opt in with the
  environment variable ``MMSEG_SPIXREG_TRITON=1``; the default is
  :data:`TRITON_VERIFIED`, False until ``benchmarks/run_gpu_checks.sh`` has
  passed on a GPU with the current kernels), ``triton`` imports and the sizes
  are within the kernels' limits (:func:`.triton_kernels.check_limits`;
  beyond them, the torch kernels);
* ``'torch'``: the torch kernels (plain tensor ops), any device;
* ``'triton'``: the fused Triton kernels; CUDA tensors, or CPU tensors when
  ``TRITON_INTERPRET=1`` (Triton's interpreter, how CI tests the kernels);
  a ValueError naming the limit for sizes beyond the kernels' limits.

While a model is exported (:func:`exporting`), every backend means the torch
kernels; while it is exported or compiled (:func:`tracing`),
the torch kernels are called directly (no autograd function), so that
``torch.export`` / ``torch.onnx.export`` / ``torch.compile`` see plain tensor
ops: the exported graph is the reference implementation itself.
"""
import importlib
import os
from types import ModuleType
from typing import Optional, Sequence

import torch
from torch import Tensor

from . import torch_kernels

BACKENDS = ('auto', 'torch', 'triton')
#: Whether ``backend='auto'`` runs the Triton kernels for CUDA tensors by
#: default. False until ``benchmarks/run_gpu_checks.sh`` has passed on a GPU
#: with the current kernels (the kernels have been tested only in Triton's
#: interpreter and compiled to PTX without a GPU); switched in a commit that
#: carries that run's numbers.
TRITON_VERIFIED = False
#: Environment variable overriding :data:`TRITON_VERIFIED` for ``'auto'``:
#: ``1`` (the Triton kernels for CUDA tensors) or ``0`` (the torch kernels).
TRITON_ENV = 'MMSEG_SPIXREG_TRITON'
_TRITON: Optional[ModuleType] = None
_TRITON_ERROR: Optional[str] = None


def triton_kernels() -> Optional[ModuleType]:
    """The Triton kernel set, or None when ``triton`` does not import."""
    global _TRITON, _TRITON_ERROR
    if _TRITON is None and _TRITON_ERROR is None:
        try:
            _TRITON = importlib.import_module('.triton_kernels', __package__)
        except ImportError as error:  # no triton on this platform
            _TRITON_ERROR = f'{type(error).__name__}: {error}'
    return _TRITON


@torch.compiler.assume_constant_result
def _interpreting() -> bool:
    """Whether Triton runs kernels through its interpreter
    (``TRITON_INTERPRET=1``); a constant for ``torch.compile``."""
    import triton
    return bool(triton.knobs.runtime.interpret)


@torch.compiler.assume_constant_result
def auto_uses_triton() -> bool:
    """Whether ``backend='auto'`` runs the Triton kernels for CUDA tensors:
    ``MMSEG_SPIXREG_TRITON`` (``1`` or ``0``) if set, else
    :data:`TRITON_VERIFIED`. Read at every call (a constant for
    ``torch.compile``)."""
    value = os.environ.get(TRITON_ENV, '').strip()
    if value == '':
        return TRITON_VERIFIED
    if value not in ('0', '1'):
        raise ValueError(f"environment variable {TRITON_ENV} must be '1' (backend='auto' runs the "
                         f"Triton kernels for CUDA tensors) or '0' (the torch kernels), got "
                         f'{value!r}')
    return value == '1'


def exporting() -> bool:
    """Whether a model is being exported (``torch.export``, ``torch.onnx.export``): then every
    backend means the torch kernels. A ``torch.jit.trace`` outside an ONNX export (mmengine's
    FLOP counter, ``tools/analysis_tools/get_flops.py``) records the ops' autograd functions as
    ``prim::PythonOp`` nodes, which the FLOP handles count."""
    return bool(torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export())


def tracing() -> bool:
    """Whether the ops are being exported (:func:`exporting`) or compiled
    (``torch.compile``): then the torch kernels run as plain tensor ops, without the
    autograd functions of :mod:`.functions`."""
    return exporting() or torch.compiler.is_compiling()


def select_kernels(backend: str,
                   device: torch.device,
                   where: str,
                   tensors: Sequence = (),
                   out_size: Optional[Sequence[int]] = None) -> ModuleType:
    """The kernel set that ``backend`` means for tensors on ``device``.

    Args:
        backend (str): ``'auto'``, ``'torch'`` or ``'triton'``.
        device (torch.device): Device of the inputs.
        where (str): Operator name for error messages.
        tensors (Sequence[Tensor]): The op's 4-D inputs (or their shapes),
            checked against the Triton kernels' limits
            (:func:`.triton_kernels.check_limits`) when those are chosen.
        out_size (Sequence[int], optional): Output grid of the hard
            superpixels, checked too.

    Returns:
        module: :mod:`.torch_kernels` or :mod:`.triton_kernels`
        (:mod:`.torch_kernels` whenever :func:`exporting`).
    """
    if backend not in BACKENDS:
        raise ValueError(f'{where}: `backend` must be one of {BACKENDS}, got '
                         f'{backend!r}')
    if backend == 'torch' or exporting():
        return torch_kernels
    if backend == 'auto':
        if not auto_uses_triton() or device.type != 'cuda' or triton_kernels() is None:
            return torch_kernels
        try:
            triton_kernels().check_limits(*tensors, out_size=out_size)
        except ValueError:  # beyond the Triton kernels' limits
            return torch_kernels
        return triton_kernels()
    if triton_kernels() is None:
        raise RuntimeError(f"{where}: backend='triton' needs the `triton` "
                           f'package, which does not import here '
                           f"({_TRITON_ERROR}); use backend='torch'")
    if device.type != 'cuda' and not _interpreting():
        raise ValueError(f"{where}: backend='triton' runs CUDA tensors, or "
                         f'tensors on other devices through Triton\'s '
                         f'interpreter when TRITON_INTERPRET=1 is set; got '
                         f"{device.type} tensors (use backend='torch' or "
                         f"'auto')")
    try:
        triton_kernels().check_limits(*tensors, out_size=out_size)
    except ValueError as error:
        raise ValueError(f'{where}: {error}') from None
    return triton_kernels()


def _prepare(kernels: ModuleType, dtype: torch.dtype, *tensors: Tensor):
    """Inputs for a kernel set: the torch kernels compute in ``dtype``, the
    Triton kernels read any float dtype and accumulate in >= float32."""
    if kernels is torch_kernels:
        return [t.to(dtype) for t in tensors]
    return list(tensors)
