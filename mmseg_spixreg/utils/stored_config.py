# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Config text stored in a checkpoint is never executed: what mmengine reads from it is
synthesised by the plug-in.

mmengine executes the config text a checkpoint stores (``Config.fromstring``): ``Runner.resume``
reads ``meta['config']`` for its GPU-count check, the inferencer without a config
``message_hub['runtime_info']['cfg']`` / ``meta['cfg']``. :func:`neutralise_stored_configs`
replaces them by texts the plug-in writes itself: ``gpu_ids = [...]`` (at most
:data:`MAX_GPU_IDS` ints read with :mod:`ast`, nothing executed) and a line raising a
``ValueError`` that asks for the config file.
"""
import ast

from .checkpoint_data import TRUST_ENV_VAR

#: The most ``gpu_ids`` a stored config may name for mmengine's resume check.
MAX_GPU_IDS = 4096


def _gpu_ids_in(text):
    """``gpu_ids`` of a stored config text, read with :mod:`ast` (nothing executed): a
    top-level ``gpu_ids = [0, 1]`` / ``(0, 1)`` / ``range(0, 2)`` of at most
    :data:`MAX_GPU_IDS` ints in ``[0, 2**31)``, else None."""
    if type(text) is not str:
        return None
    try:
        tree = ast.parse(text)
    except Exception:  # SyntaxError, RecursionError, MemoryError, ...: nothing to read
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == 'gpu_ids'):
            value = node.value
            try:
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                        and value.func.id == 'range' and not value.keywords
                        and len(value.args) <= 3):
                    ids = range(*[ast.literal_eval(a) for a in value.args])
                elif isinstance(value, (ast.List, ast.Tuple)) and len(value.elts) <= MAX_GPU_IDS:
                    ids = ast.literal_eval(value)
                else:
                    return None
            except Exception:
                return None
            if len(ids) > MAX_GPU_IDS or not all(type(i) is int and 0 <= i < 2**31 for i in ids):
                return None
            return [int(i) for i in ids]
    return None


def _refusing_config_text(source):
    """A config text whose only statement raises a ValueError asking for the config file."""
    message = (f'{source}: the config text stored in this checkpoint is not executed (a config '
               'is Python code: a checkpoint could run anything through it). Pass the config '
               f"file with the weights: MMSegInferencer(model='CONFIG.py', weights={source!r}) "
               f"or init_model('CONFIG.py', {source!r}); only for a file you trust, set "
               f'{TRUST_ENV_VAR}=1 to let mmengine execute its stored config')
    return f'raise ValueError({message!r})\n'


def neutralise_stored_configs(checkpoint, source):
    """Replace, in place, the config texts mmengine would execute (``Config.fromstring``) by
    texts the plug-in writes.

    * ``meta['config']`` (read by ``Runner.resume`` for its GPU-count check): replaced by
      ``gpu_ids = [...]`` with the ids :mod:`ast` reads from the text (removed if none).
    * ``meta['cfg']`` and ``message_hub['runtime_info']['cfg']`` (read by mmengine's
      inferencer when it is given no config): replaced by a line that raises a ``ValueError``
      asking for the config file.

    Args:
        checkpoint: A checkpoint rebuilt by :func:`checkpoint_as_data` (only its plain ``dict``
            / ``OrderedDict`` levels are looked into, with ``dict``'s own functions).
        source (str): The checkpoint's path or URL (for the message).

    Returns:
        The checkpoint.
    """
    if not isinstance(checkpoint, dict):
        return checkpoint
    meta = dict.get(checkpoint, 'meta')
    if isinstance(meta, dict):
        if dict.__contains__(meta, 'config'):
            ids = _gpu_ids_in(dict.pop(meta, 'config'))
            if ids is not None:
                dict.__setitem__(meta, 'config', f'gpu_ids = {ids!r}\n')
        if dict.__contains__(meta, 'cfg'):
            dict.__setitem__(meta, 'cfg', _refusing_config_text(source))
    hub = dict.get(checkpoint, 'message_hub')
    info = dict.get(hub, 'runtime_info') if isinstance(hub, dict) else None
    if isinstance(info, dict) and dict.__contains__(info, 'cfg'):
        dict.__setitem__(info, 'cfg', _refusing_config_text(source))
    return checkpoint
