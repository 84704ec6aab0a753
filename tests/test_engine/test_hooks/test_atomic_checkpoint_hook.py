# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""AtomicCheckpointHook: outdated checkpoints are deleted only after the new ones are written
(mmengine's CheckpointHook deletes first). The SIGKILL end-to-end test:
tests/test_tools/test_kill_resume.py."""
import os
import os.path as osp


class _RecordingRunner:
    """The parts of mmengine's Runner that CheckpointHook uses; ``save_checkpoint`` records
    which files exist when a checkpoint is written and writes it as Runner does."""

    def __init__(self, work_dir, name):
        from mmengine.logging import MessageHub, MMLogger
        self.work_dir = work_dir
        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_current_instance()
        self.epoch, self.iter = 0, 0
        self.present_at_save = {}

    def save_checkpoint(self,
                        out_dir,
                        filename,
                        file_client_args=None,
                        save_optimizer=True,
                        save_param_scheduler=True,
                        meta=None,
                        by_epoch=True,
                        backend_args=None):
        from mmengine.runner.checkpoint import save_checkpoint
        self.present_at_save.setdefault(filename, []).append(sorted(os.listdir(self.work_dir)))
        save_checkpoint({'meta': meta}, osp.join(out_dir, filename), backend_args=backend_args)


def _save_sequence(hook_type, work_dir):
    """iter_2 + best (mIoU 0.5), then iter_4 + a better best (0.7), max_keep_ckpts=1."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import HOOKS

    import mmseg_spixreg  # noqa: F401
    init_default_scope('mmseg')
    hook = HOOKS.build(
        dict(
            type=hook_type,
            interval=2,
            by_epoch=False,
            max_keep_ckpts=1,
            save_best='mIoU',
            rule='greater'))
    runner = _RecordingRunner(work_dir, f'{hook_type}-{work_dir}')
    hook.before_train(runner)
    for it, miou in ((1, 0.5), (3, 0.7)):
        runner.iter = it
        hook._save_checkpoint(runner)  # what after_train_iter does every `interval` iterations
        runner.iter = it + 1
        hook.after_val_epoch(runner, {'mIoU': miou})
    return runner


def test_atomic_hook_deletes_old_checkpoints_only_after_the_new_ones(tmp_path):
    work = str(tmp_path / 'atomic')
    os.makedirs(work)
    runner = _save_sequence('AtomicCheckpointHook', work)
    # when iter_4 / the new best were first written, the checkpoints they replace were still there
    # (iter_4 is written again after the best one, as mmengine does, to store the best score)
    assert 'iter_2.pth' in runner.present_at_save['iter_4.pth'][0]
    assert 'best_mIoU_iter_2.pth' in runner.present_at_save['best_mIoU_iter_4.pth'][0]
    assert sorted(os.listdir(work)) == [
        'best_checkpoint', 'best_mIoU_iter_4.pth', 'iter_4.pth', 'last_checkpoint'
    ]
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'iter_4.pth')
    # mmengine's CheckpointHook deletes first: a kill while saving left nothing to resume from
    stock = str(tmp_path / 'stock')
    os.makedirs(stock)
    runner = _save_sequence('CheckpointHook', stock)
    assert 'iter_2.pth' not in runner.present_at_save['iter_4.pth'][0]
    assert 'best_mIoU_iter_2.pth' not in runner.present_at_save['best_mIoU_iter_4.pth'][0]


def test_best_checkpoint_is_the_recorded_one_not_the_newest_file(tmp_path):
    """The hook records the best checkpoint in work_dir/best_checkpoint; an orphan best_*.pth
    (left by a kill before the previous best was deleted, newer by mtime) is not taken."""
    import time

    from mmseg_spixreg.engine.hooks import recorded_best_checkpoint
    from run_experiment import best_checkpoint
    work = str(tmp_path / 'atomic')
    os.makedirs(work)
    _save_sequence('AtomicCheckpointHook', work)
    best = osp.join(work, 'best_mIoU_iter_4.pth')
    assert recorded_best_checkpoint(work) == best
    time.sleep(0.01)
    with open(osp.join(work, 'best_mIoU_iter_9.pth'), 'wb') as f:
        f.write(b'orphan')
    assert recorded_best_checkpoint(work) == best == best_checkpoint(work)
    empty = str(tmp_path / 'no_best')
    os.makedirs(empty)
    assert recorded_best_checkpoint(empty) is None


def test_backend_args_keep_the_atomic_path_or_are_refused():
    import pytest
    from mmengine.registry import init_default_scope
    from mmseg.registry import HOOKS

    import mmseg_spixreg  # noqa: F401
    from mmseg_spixreg.utils.checkpoint import ATOMIC_BACKEND
    init_default_scope('mmseg')
    for args in (None, dict(backend='local'), dict(backend=ATOMIC_BACKEND)):
        hook = HOOKS.build(dict(type='AtomicCheckpointHook', interval=1, backend_args=args))
        assert hook.backend_args == dict(backend=ATOMIC_BACKEND)
    for kwargs in (dict(backend_args=dict(backend='petrel')),
                   dict(backend_args=dict(backend='local', path_mapping={'a': 'b'})),
                   dict(out_dir='s3://bucket/ckpts'), dict(file_client_args=dict(backend='disk'))):
        with pytest.raises(ValueError, match='atomically to local disk only'):
            HOOKS.build(dict(type='AtomicCheckpointHook', interval=1, **kwargs))
