# Copyright (c) mmseg-spixreg contributors. All rights reserved.
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from mmseg_spixreg.utils.checkpoint import ATOMIC_BACKEND, atomic_write_bytes

#: File in the work directory that names the best checkpoint (written by the hook).
BEST_RECORD = 'best_checkpoint'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose checkpoints survive a kill (SIGKILL, OOM killer,
    preemption) at any moment: ``--resume`` always finds a complete checkpoint.

    Same arguments and behaviour as ``CheckpointHook`` (mmengine 0.10.7), with three changes:

    1. Checkpoints (``iter_N.pth`` and best checkpoints) are written to a temporary file in the
       same directory, fsynced and renamed into place (``AtomicLocalBackend``, used when the
       checkpoints go to local disk and no ``backend_args`` / ``file_client_args`` is given).
    2. ``work_dir/last_checkpoint``, the file ``--resume`` reads, is replaced atomically and
       only after the new checkpoint is complete under its final name (mmengine truncates and
       rewrites it in place: a kill in between leaves it empty).
    3. Checkpoints beyond ``max_keep_ckpts`` are deleted only after ``last_checkpoint`` points
       to the new one, and the previous best checkpoint only after the new best one is written
       (mmengine deletes the old checkpoint *before* writing the new one, so with
       ``max_keep_ckpts=1`` a kill during the save left ``last_checkpoint`` naming a deleted
       file and the run could not be resumed).

    4. The best checkpoint (``save_best``; the first rule's with several) is recorded in
       ``work_dir/best_checkpoint`` (atomic, after it is complete, before the previous best is
       deleted): :func:`recorded_best_checkpoint` reads it, so a stale ``best_*.pth`` left by a
       kill is never taken for the best.

    The written checkpoints are identical to ``CheckpointHook``'s (other hooks, e.g.
    ``RNGStateHook``, add their state through ``before_save_checkpoint`` as before).

    Args:
        backend_args (dict, optional): Only the local backend (``None``,
            ``dict(backend='local')`` or ``dict(backend='atomic_local')``): the hook writes
            atomically to local disk; anything else is a ``ValueError`` (use mmengine's
            ``CheckpointHook`` for remote storage).
        file_client_args (dict, optional): Must be None (deprecated in mmengine).
        out_dir (str, optional): A local directory (not a URL).
        *args, **kwargs: As for ``CheckpointHook``.
    """

    def __init__(self, *args, backend_args=None, file_client_args=None, out_dir=None, **kwargs):
        local = backend_args is None or (isinstance(backend_args, dict)
                                         and set(backend_args) <= {'backend'} and
                                         backend_args.get('backend') in ('local', ATOMIC_BACKEND))
        if not local or file_client_args is not None or '://' in str(out_dir or ''):
            raise ValueError(
                'AtomicCheckpointHook writes checkpoints atomically to local disk only, got '
                f'backend_args={backend_args!r}, file_client_args={file_client_args!r}, '
                f"out_dir={out_dir!r}; use type='CheckpointHook' (mmengine's, not kill-safe) "
                'for other storage')
        super().__init__(
            *args, backend_args=dict(backend=ATOMIC_BACKEND), out_dir=out_dir, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
        # CheckpointHook._save_checkpoint_with_step with the file operations reordered:
        # save (atomic) -> last_checkpoint (atomic) -> delete outdated checkpoints
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        atomic_write_bytes(str(self.last_ckpt), osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics):
        # mmengine removes the previous best checkpoint before it writes the new one: run it
        # with the removals deferred until the new best checkpoint is complete
        backend, deferred = self.file_backend, []
        self.file_backend = _DeferredRemovals(backend, deferred)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        indicators = getattr(self, 'key_indicators', [])  # set only with save_best
        best = None if not indicators else self.best_ckpt_path if len(indicators) == 1 else \
            self.best_ckpt_path_dict.get(indicators[0])
        if best and is_main_process():
            atomic_write_bytes(str(best), osp.join(runner.work_dir, BEST_RECORD))
        for method, path in deferred:
            getattr(backend, method)(path)


def recorded_best_checkpoint(work_dir):
    """The best checkpoint ``AtomicCheckpointHook`` recorded in ``work_dir/best_checkpoint``.

    Args:
        work_dir (str): The run's work directory.

    Returns:
        str | None: Its path, or None if no best checkpoint was recorded.

    Raises:
        FileNotFoundError: If the record names a checkpoint that does not exist.
    """
    record = osp.join(work_dir, BEST_RECORD)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{record} names {path!r}, which does not exist')
    return path


class _DeferredRemovals:
    """A file backend proxy that records ``remove`` / ``rmtree`` calls instead of running them.

    Args:
        backend (mmengine.fileio.BaseStorageBackend): The backend every other call goes to.
        deferred (list): Receives ``(method name, path)`` for each recorded removal.
    """

    def __init__(self, backend, deferred):
        self._backend = backend
        self._deferred = deferred

    def remove(self, path):
        self._deferred.append(('remove', path))

    def rmtree(self, path):
        self._deferred.append(('rmtree', path))

    def __getattr__(self, name):
        return getattr(self._backend, name)
