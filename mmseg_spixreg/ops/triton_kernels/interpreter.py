# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Interpreted launches that leave ``triton.language`` as they found it.

Triton's interpreter patches ``triton.language`` while it runs a kernel and,
for the library functions a kernel calls, does not restore it, which broke
every later compile in the process. :func:`interpreted_launch` wraps an
interpreted launch so that one process can run both interpreted and compiled
launches (:mod:`.launch` chooses per launch).
"""
import contextlib
import functools
import sys
import types
from typing import Callable, List, Tuple

import triton.language as tl

# The functions of triton.language that the kernels call and that triton
# itself defines with @triton.jit (tl.where, tl.exp, tl.load ... are builtins).
_LIBRARY_FUNCTIONS = ('max', 'sum', 'zeros', 'maximum', 'minimum', 'sqrt')
_MISSING = object()


@functools.lru_cache(maxsize=None)
def _interpreted(function: Callable):
    from triton.runtime.interpreter import InterpretedFunction
    return InterpretedFunction(function.fn)


def _language_namespaces() -> List[object]:
    """Every module of ``triton.language`` (``tl``, ``tl.core``, ``tl.math``,
    ``tl.standard`` ...) and every class they define: what Triton's
    interpreter patches while it runs a kernel."""
    modules = [
        module for name, module in list(sys.modules.items())
        if isinstance(module, types.ModuleType) and (
            name == 'triton.language' or name.startswith('triton.language.'))
    ]
    classes = {}
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, type) and str(getattr(value, '__module__',
                                                       '')).startswith('triton.language'):
                classes[id(value)] = value
    return modules + list(classes.values())


def _snapshot_language() -> List[Tuple[object, dict]]:
    """``(namespace, copy of its __dict__)`` for :func:`_language_namespaces`."""
    return [(namespace, dict(vars(namespace))) for namespace in _language_namespaces()]


def _restore_language(snapshot: List[Tuple[object, dict]]) -> None:
    """Put every attribute of the namespaces in ``snapshot`` back to the very
    object it was, and remove what was added (a submodule imported meanwhile
    excepted: an import, not a patch).

    The interpreter runs its rewritten copies of library functions (``tl.sum``
    ...) in their module's namespace, to which it adds its own names once, on
    the first rewrite; those names are removed here, so the cached rewrites of
    the functions of these modules are dropped too (the next interpreted
    launch rewrites them again).
    """
    module_dicts = set()
    for namespace, saved in snapshot:
        current = vars(namespace)
        if isinstance(namespace, types.ModuleType):
            module_dicts.add(id(current))
        for name in [n for n in current if n not in saved]:
            value = current[name]
            if isinstance(value, types.ModuleType) and value.__name__ == (
                    f'{getattr(namespace, "__name__", "")}.{name}'):
                continue
            delattr(namespace, name)
        for name, value in saved.items():
            if current.get(name, _MISSING) is not value:
                setattr(namespace, name, value)
    from triton.runtime.interpreter import InterpretedFunction
    rewritten = getattr(InterpretedFunction, 'rewritten_fn', None)
    if isinstance(rewritten, dict):
        for fn in [f for f in rewritten if id(getattr(f, '__globals__', None)) in module_dicts]:
            del rewritten[fn]


@contextlib.contextmanager
def interpreted_launch():
    """Around an interpreted launch: interpreted versions of the library
    functions the kernel calls, and ``triton.language`` exactly as before
    afterwards.

    * Triton decides when it is imported whether its own ``@triton.jit``
      library functions (``tl.sum``, ``tl.max``, ``tl.zeros``) are
      interpretable; if it was imported before ``TRITON_INTERPRET=1`` was set,
      an interpreted kernel calling them fails ("Cannot call @triton.jit'd
      outside of the scope of a kernel"). They are swapped for interpreted
      wrappers of the same Python functions for the duration of the launch.
    * Triton's interpreter replaces the builtins of ``triton.language`` (and
      of ``tl.core``, ``tl.tensor`` ...) by interpreter versions while it
      runs; it restores those of the kernel's own launch, but not those it
      patches for a library function the kernel calls (Triton 3.8:
      ``InterpretedFunction.__call__``). Left patched, ``tl.core`` made every
      later compile in the process fail (``'ir.value' object has no
      attribute 'dtype'`` at the first ``.to()``) unless the kernel was in
      Triton's on-disk cache. Every module of ``triton.language`` and every
      class it defines is snapshotted before the launch and restored after it
      (:func:`_restore_language`), whatever the Triton version patches.
    """
    from triton.runtime.interpreter import InterpretedFunction  # noqa: F401 (its imports first)
    from triton.runtime.jit import JITFunction
    snapshot = _snapshot_language()
    try:
        for name in _LIBRARY_FUNCTIONS:
            function = getattr(tl, name)
            if isinstance(function, JITFunction):
                setattr(tl, name, _interpreted(function))
        yield
    finally:
        _restore_language(snapshot)


@functools.lru_cache(maxsize=None)
def library_interpreted_only() -> bool:
    """Whether ``triton`` was imported with ``TRITON_INTERPRET=1`` set: its own
    ``@triton.jit`` library functions are then interpreter-only (no compile
    can use them) for the life of the process."""
    return type(tl.standard.sum).__name__ == 'InterpretedFunction'
