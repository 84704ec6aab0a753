# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""What a loaded checkpoint may be: plain data, never an object whose methods run.

Three steps turn the bytes of a checkpoint into something mmengine and the plug-in may read
(:func:`mmseg_spixreg.utils.checkpoint.load_from_local_safe` runs them in this order):

1. **Unpickling with an allow-list** (:func:`checkpoint_safe_globals`): besides torch's own
   weights-only globals, only validating stand-ins for numpy arrays / scalars / dtypes (bool,
   integer, float, complex) and mmengine's ``HistoryBuffer`` (its own statistics methods, and
   those registered in *this* process with ``HistoryBuffer.register_statistics``).
2. **Rebuilding as plain data** (:func:`checkpoint_as_data`): every container is rebuilt as a new
   builtin (``dict``, ``list``, ``tuple``, ``set``; an ``OrderedDict`` only where it carries
   torch's ``_metadata``, itself rebuilt); tensors, numpy values and scalars are kept only when
   they carry no instance attributes. Anything else (a ``Counter`` or ``OrderedDict`` with
   attributes that shadow its methods, a function, a tensor with attributes, an unhashable set
   member, a stand-in without its state) is refused with :class:`UnsafeCheckpointError`. The
   rebuild itself calls no method of a loaded object: only the types' own functions.
3. **Synthesising what mmengine reads from stored config texts**
   (:func:`mmseg_spixreg.utils.stored_config.neutralise_stored_configs`).
"""
import pickle
import re
from collections import Counter, OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Environment variable that opts in to full (unsafe) unpickling of local checkpoints.
TRUST_ENV_VAR = 'MMSEG_SPIXREG_TRUST_CHECKPOINTS'

# HistoryBuffer's own statistics methods
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
# numpy dtype codes a checkpoint may contain: bool, signed / unsigned int, float, complex
_NUMPY_DTYPE_CODE = re.compile(r'[biufc][0-9]{1,2}')
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
# an array larger than this cannot be in a checkpoint (numpy refuses > 2**63 bytes anyway)
_MAX_ARRAY_BYTES = 2**62


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint is not plain data: it needs globals outside :func:`checkpoint_safe_globals`,
    or holds objects :func:`checkpoint_as_data` does not rebuild."""


def _refuse(message):
    raise pickle.UnpicklingError(message)


# ----------------------------------------------------------------------------------------------
# stand-ins for the globals a checkpoint may name (validated while unpickling; replaced by the
# real objects in checkpoint_as_data). Each is a class whose construction (pickle's REDUCE) and
# __new__ (pickle's NEWOBJ) do the same validated thing.


class PickledDtype:
    """What a pickled ``numpy.dtype`` is while a checkpoint is unpickled.

    Only plain bool / integer / float / complex dtypes (codes like ``'f4'``, ``'i8'``, ``'b1'``)
    are accepted, with a byte order and nothing else: no object dtype, no structured (fields)
    or sub-array dtype, no flags (numpy would take them from the pickle as they are).

    Args:
        code (str): The dtype code numpy pickles (``'f8'``, ...).
    """

    dtype = None  # an instance made by NEWOBJ without a code has none: refused

    def __init__(self, code):
        if type(code) is not str or not _NUMPY_DTYPE_CODE.fullmatch(code):
            _refuse(f'numpy dtype {code!r} is not allowed in a checkpoint (only bool, integer, '
                    'float and complex dtypes are)')
        try:
            self.dtype = np.dtype(code)
        except TypeError as err:
            _refuse(f'numpy dtype {code!r}: {err}')

    def __setstate__(self, state):
        # numpy's state: (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if type(state) is not tuple or len(state) not in (8, 9) or state[0] not in (3, 4):
            _refuse(f'numpy dtype state {state!r} is not allowed in a checkpoint')
        order, subarray, names, fields = state[1:5]
        if order not in ('<', '>', '|', '=') or (subarray, names, fields) != (None, None, None):
            _refuse(f'numpy dtype state {state!r} is not allowed in a checkpoint (only plain '
                    'numeric dtypes with a byte order are)')
        if self.dtype is None:
            _refuse('numpy dtype state without its dtype code')
        if order in '<>':
            self.dtype = self.dtype.newbyteorder(order)


class NumpyDtypeName:
    """Stand-in for the global ``numpy.dtype``: ``numpy.dtype(code, align, copy)`` (how a
    pickled dtype starts) gives a :class:`PickledDtype`."""

    def __new__(cls, code=None, align=False, copy=False):
        return PickledDtype(code)


class NumpyNdarrayName:
    """Stand-in for the global ``numpy.ndarray``: a pickled array names it as the type to
    reconstruct; calling or instantiating it (``ndarray(shape, dtype, buffer, offset,
    strides)`` reads memory outside the buffer) is refused."""

    def __new__(cls, *args, **kwargs):
        _refuse('numpy.ndarray(...) cannot be called in a checkpoint (it can read memory '
                'outside its buffer); arrays are rebuilt from their pickled state only')


class _FilledByState:
    """A stand-in made empty (by a call without arguments or by NEWOBJ) and filled by its
    pickled state (BUILD)."""

    def __new__(cls, *args):
        if args:
            _refuse(f'{cls.__name__} cannot be called with arguments in a checkpoint')
        return super().__new__(cls)


class PickledArray(_FilledByState):
    """What a pickled numpy array is while a checkpoint is unpickled: its state is checked
    (numeric dtype, C or Fortran order, exactly ``prod(shape) * itemsize`` bytes) and copied
    into a new array."""

    array = None

    def __setstate__(self, state):
        if type(state) is not tuple or len(state) not in (4, 5):
            _refuse('numpy array state is not a 4- or 5-tuple')
        shape, dtype, fortran, data = state[-4:]
        if type(shape) is not tuple or not all(type(n) is int and n >= 0 for n in shape):
            _refuse(f'numpy array shape {shape!r} is not a tuple of non-negative ints')
        if type(dtype) is not PickledDtype or dtype.dtype is None:
            _refuse(f'numpy array dtype {dtype!r} is not a pickled numeric dtype')
        if type(data) is not bytes or fortran not in (True, False, 0, 1):
            _refuse('numpy array data must be bytes (an object array is not allowed)')
        nbytes = dtype.dtype.itemsize
        for n in shape:  # Python ints: no overflow; stops as soon as the size is absurd
            nbytes *= n
            if nbytes > _MAX_ARRAY_BYTES:
                _refuse(f'numpy array shape {shape} is larger than any checkpoint can hold')
        if len(data) != nbytes:
            _refuse(f'numpy array of shape {shape} and dtype {dtype.dtype} needs {nbytes} bytes, '
                    f'the checkpoint has {len(data)}')
        flat = np.frombuffer(data, dtype=dtype.dtype)
        self.array = flat.reshape(shape, order='F' if fortran else 'C').copy(order='K')


class NumpyReconstructName:
    """Stand-in for ``numpy.core.multiarray._reconstruct(subtype, shape, typecode)`` (how a
    pickled array starts): ``subtype`` must be the ``numpy.ndarray`` stand-in (no subclasses);
    gives a :class:`PickledArray` that its pickled state fills."""

    def __new__(cls, subtype=None, shape=None, typecode=None):
        if subtype is not NumpyNdarrayName:
            _refuse(f'numpy _reconstruct of {subtype!r} is not allowed (only numpy.ndarray)')
        return PickledArray()


class NumpyScalarName:
    """Stand-in for ``numpy.core.multiarray.scalar(dtype, data)`` (a pickled numpy scalar):
    a numeric :class:`PickledDtype` and exactly ``itemsize`` bytes give the scalar."""

    def __new__(cls, dtype=None, data=None):
        if type(dtype) is not PickledDtype or dtype.dtype is None or type(data) is not bytes:
            _refuse('numpy scalar needs a numeric dtype and bytes')
        if len(data) != dtype.dtype.itemsize:
            _refuse(f'numpy scalar of dtype {dtype.dtype} needs {dtype.dtype.itemsize} bytes, '
                    f'the checkpoint has {len(data)}')
        return np.frombuffer(data, dtype=dtype.dtype)[0].copy()


class RegisteredStatistic:
    """A ``HistoryBuffer`` statistic a checkpoint names, registered in this process under
    ``name`` (``HistoryBuffer.register_statistics``): the loaded buffer uses the process's own
    function, never anything the file names.

    Args:
        name (str): The statistic's name in ``HistoryBuffer._statistics_methods``.
    """

    def __init__(self, name):
        self.name = name


class _StatisticOwner:
    """A class a registered statistic is defined in (pickle writes a method as
    ``getattr(Owner, name)``); only :class:`HistoryBufferGetattrName` may look into it."""

    def __init__(self, path):
        self.path = path


def _registered_statistics():
    """``{'module.qualname': name}`` of the statistics registered in this process beyond
    HistoryBuffer's own."""
    found = {}
    for name, fn in dict.items(HistoryBuffer._statistics_methods):
        if name in _HISTORY_BUFFER_STATISTICS or not callable(fn):
            continue
        module, qualname = getattr(fn, '__module__', None), getattr(fn, '__qualname__', None)
        if isinstance(module, str) and isinstance(qualname, str) and '<' not in qualname:
            found[f'{module}.{qualname}'] = name
    return found


class HistoryBufferGetattrName:
    """Stand-in for ``builtins.getattr`` while a checkpoint is unpickled.

    ``HistoryBuffer.__getstate__`` stores its statistics methods, which pickle writes as
    ``builtins.getattr(HistoryBuffer, 'min')`` (or ``getattr(Owner, 'fn')`` for a statistic
    registered as a method of a class). A real ``getattr`` on an allowed class reaches e.g.
    ``ndarray.tofile`` (a file write): only HistoryBuffer's own statistics and the statistics
    registered in this process are given.
    """

    def __new__(cls, owner=None, name=None):
        if owner in (PickledHistoryBuffer, HistoryBuffer) and name in _HISTORY_BUFFER_STATISTICS:
            return getattr(HistoryBuffer, name)
        if type(owner) is _StatisticOwner and type(name) is str:
            registered = _registered_statistics().get(f'{owner.path}.{name}')
            if registered is not None:
                return RegisteredStatistic(registered)
        _refuse(f'builtins.getattr({owner!r}, {name!r}) is not allowed in a checkpoint (only '
                f'HistoryBuffer statistics methods {list(_HISTORY_BUFFER_STATISTICS)} and the '
                'statistics registered in this process are)')


def _statistic_ok(name, fn):
    if type(fn) is RegisteredStatistic:
        return fn.name == name and HistoryBuffer._statistics_methods.get(name) is not None
    return name in _HISTORY_BUFFER_STATISTICS and fn is getattr(HistoryBuffer, name)


class PickledHistoryBuffer(_FilledByState):
    """What mmengine's ``HistoryBuffer`` (message hub logs) is while a checkpoint is unpickled.

    Its state may hold ``max_length``, the log and count arrays and statistics methods that
    are HistoryBuffer's own or registered in this process under the same name, nothing else:
    ``HistoryBuffer.__setstate__`` would add any function of the pickle to the statistics
    methods of *every* buffer in the process. It becomes a new
    ``HistoryBuffer(log_history, count_history, max_length)``, which uses the process's own
    statistics table.
    """

    buffer = None

    def __setstate__(self, state):
        if type(state) is not dict:
            _refuse('HistoryBuffer state must be a dict')
        unknown = set(state) - {
            'max_length', '_log_history', '_count_history', 'statistics_methods',
            '_statistics_methods'
        }
        if unknown:
            _refuse(f'HistoryBuffer state has unknown keys {sorted(map(repr, unknown))}')
        for key in ('statistics_methods', '_statistics_methods'):
            methods = dict.get(state, key, {})
            if type(methods) is not dict or not all(
                    type(name) is str and _statistic_ok(name, fn)
                    for name, fn in dict.items(methods)):
                _refuse('HistoryBuffer statistics methods may only be its own '
                        f'{list(_HISTORY_BUFFER_STATISTICS)} or statistics registered in this '
                        'process (HistoryBuffer.register_statistics) under the same name')
        max_length = dict.get(state, 'max_length', 1000000)
        logs, counts = dict.get(state, '_log_history'), dict.get(state, '_count_history')
        if type(max_length) is not int or max_length <= 0:
            _refuse(f'HistoryBuffer max_length must be a positive int, got {max_length!r}')
        if not (type(logs) is PickledArray and type(counts) is PickledArray
                and logs.array is not None and counts.array is not None and
                logs.array.ndim == counts.array.ndim == 1 and len(logs.array) == len(counts.array)):
            _refuse('HistoryBuffer logs and counts must be 1-D numeric arrays of equal length')
        self.buffer = HistoryBuffer(logs.array, counts.array, max_length)


class PickledBytesName:
    """Stand-in for ``builtins.bytes``: pickle protocol 2 writes ``b''`` as ``bytes()`` (the
    data of an empty numpy array); any argument (``bytes(10**12)`` allocates) is refused."""

    def __new__(cls, *args):
        if args:
            _refuse('builtins.bytes(...) with arguments is not allowed in a checkpoint')
        return b''


def checkpoint_safe_globals():
    """The allow-list of a checkpoint load: ``(stand-in, 'module.name')`` pairs.

    What mmengine 0.10.7 / mmseg_spixreg checkpoints contain besides tensors and containers
    (found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints written
    by ``tools/train.py``): numpy arrays, scalars and dtypes under numpy 1.x and 2.x names,
    mmengine's ``HistoryBuffer`` and ``builtins.getattr`` (for its statistics methods), plus the
    global names of the statistics registered in this process. Each name maps to a validating
    stand-in, never to the real callable.

    Returns:
        list[tuple]: Entries for ``torch.serialization.safe_globals``.
    """
    found = [(NumpyDtypeName, 'numpy.dtype'), (NumpyNdarrayName, 'numpy.ndarray'),
             (PickledHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
             (HistoryBufferGetattrName, 'builtins.getattr'), (PickledBytesName, 'builtins.bytes')]
    for module in _NUMPY_MODULES:
        found += [(NumpyReconstructName, f'{module}._reconstruct'),
                  (NumpyScalarName, f'{module}.scalar')]
    for path, name in _registered_statistics().items():
        # the global itself is the marker (not callable: pickle cannot call or instantiate it)
        found.append((RegisteredStatistic(name), path))
        owner = path.rsplit('.', 1)[0]
        found.append((_StatisticOwner(owner), owner))  # for getattr(Owner, 'fn')
    # BUILD (setting an object's state) is allowed on instances of these classes only
    return found + [(PickledDtype, f'{__name__}.PickledDtype'),
                    (PickledArray, f'{__name__}.PickledArray')]


# ----------------------------------------------------------------------------------------------
# rebuilding as plain data

_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_TORCH_VALUES = (torch.dtype, torch.device, torch.layout, torch.memory_format, torch.qscheme)
_NUMPY_SCALARS = (np.bool_, np.number)


def _instance_state(obj):
    """The instance attributes of ``obj`` (its ``__dict__``, read without calling anything of
    ``obj``); {} for an object without one."""
    try:
        state = object.__getattribute__(obj, '__dict__')
    except AttributeError:
        return {}
    return dict(state) if type(state) is dict else {'__dict__': state}


def _names(keys):
    return ', '.join(sorted(repr(k) for k in keys))


def _hashable(obj, where):
    try:
        hash(obj)
    except TypeError:
        _refuse(f'{where} holds an unhashable {type(obj).__name__} as a key or set member')
    return obj


class _Rebuild:
    """:func:`checkpoint_as_data` as a memoised walk (shared and cyclic references stay
    shared: each loaded object is rebuilt once)."""

    def __init__(self):
        self.memo = {}
        self.keep = []  # the loaded objects, so that no id() is reused during the walk

    def __call__(self, obj):
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        self.keep.append(obj)
        kind = type(obj)
        if kind in _SCALARS or kind in _TORCH_VALUES:
            out = obj
        elif kind in (torch.Tensor, torch.nn.Parameter):
            attrs = _instance_state(obj)
            if attrs:
                _refuse(f'a tensor carrying instance attributes {_names(attrs)}')
            out = obj
        elif isinstance(obj, _NUMPY_SCALARS) and type(obj).__module__ == 'numpy':
            out = obj  # made by NumpyScalarName: numpy scalars carry no attributes
        elif kind is PickledArray:
            if obj.array is None:
                _refuse('numpy array without its state')
            out = obj.array
        elif kind is PickledDtype:
            if obj.dtype is None:
                _refuse('numpy dtype without its code')
            out = obj.dtype
        elif kind is PickledHistoryBuffer:
            if obj.buffer is None:
                _refuse('HistoryBuffer without its state')
            out = obj.buffer
        elif kind in (dict, OrderedDict, Counter):
            out = self._mapping(obj, kind)
        elif kind is list:
            out = self.memo[key] = []
            out.extend(self(v) for v in list.__iter__(obj))
        elif kind is tuple:
            out = tuple(self(v) for v in tuple.__iter__(obj))
        elif kind is torch.Size:
            items = tuple(tuple.__iter__(obj))
            if not all(type(n) is int for n in items):
                _refuse(f'torch.Size of {[type(n).__name__ for n in items]}, not ints')
            out = torch.Size(items)
        elif kind in (set, frozenset):
            out = kind(_hashable(self(v), kind.__name__) for v in kind.__iter__(obj))
        elif kind is bytearray:
            out = bytearray(bytes(obj))
        else:
            _refuse(f'{kind.__module__}.{kind.__qualname__} objects are not plain data')
        self.memo[key] = out
        return out

    def _mapping(self, obj, kind):
        name = f'{kind.__module__}.{kind.__qualname__}' if kind is not dict else 'dict'
        attrs = _instance_state(obj)
        extra = set(attrs) - ({'_metadata'} if kind is OrderedDict else set())
        if extra:
            _refuse(f'a {name} carrying instance attributes {_names(extra)} (they would shadow '
                    'its methods)')
        if '_metadata' in attrs:
            out = self.memo[id(obj)] = OrderedDict()
            out._metadata = self(attrs['_metadata'])
        else:
            out = self.memo[id(obj)] = {}
        for key, value in list(dict.items(obj)):
            out[_hashable(self(key), name)] = self(value)
        return out


def checkpoint_as_data(obj):
    """Rebuild an unpickled checkpoint as plain data (see the module docstring).

    Args:
        obj: What ``torch.load(weights_only=True)`` returned with the allow-list of
            :func:`checkpoint_safe_globals`.

    Returns:
        The same content as new builtin containers, tensors, numpy values and mmengine
        ``HistoryBuffer`` objects.

    Raises:
        pickle.UnpicklingError: For anything that is not plain data (the loaders turn it into
            an :class:`UnsafeCheckpointError` naming the file).
    """
    try:
        return _Rebuild()(obj)
    except RecursionError:
        _refuse('the checkpoint is nested too deeply to be rebuilt as plain data')
