# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""LossTargetStopHook: the paper's fine-tuning stop rule, on a toy model and fake runner."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from mmseg_spixreg.engine.hooks import LossTargetStopHook


class _MeanLossModel(BaseModel):
    """Loss = mean of the batch's ``x``: the validation loss is known by construction."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, mode='loss'):
        assert mode == 'loss' and not self.training  # evaluated in eval mode
        return dict(loss_a=x.float().mean() + 0 * self.w, loss_b=torch.tensor(0.0))


def _runner(tmp_path, val_values, built_values, iteration):
    """Fake runner; ``build_dataloader(cfg)`` yields ``built_values[cfg['name']]``."""
    saved, built = [], []

    def build_dataloader(cfg, seed=None):
        built.append((cfg, seed))
        return [dict(x=torch.tensor([v])) for v in built_values[cfg['name']]]

    runner = SimpleNamespace(
        model=_MeanLossModel().train(),
        seed=3,
        iter=iteration,
        work_dir=str(tmp_path),
        val_dataloader=[dict(x=torch.tensor([v])) for v in val_values],
        build_dataloader=build_dataloader,
        message_hub=MessageHub.get_instance('test_loss_target_stop_hook'),
        train_loop=SimpleNamespace(stop_training=False),
        save_checkpoint=lambda *a, **k: saved.append((a, k)))
    return runner, saved, built


def test_stops_when_val_loss_reaches_target(tmp_path):
    # runner.val_dataloader: mean loss (4 + 2) / 2 = 3 > target 2.5 -> keeps training
    runner, saved, _ = _runner(tmp_path, [4.0, 2.0], {}, iteration=9)
    hook = LossTargetStopHook(target_loss=2.5, interval=5)
    hook.before_train(runner)
    hook.after_train_iter(runner, batch_idx=9)  # iteration 10: a check
    assert not runner.train_loop.stop_training and not saved
    assert runner.message_hub.get_scalar('finetune/val_loss').current() == pytest.approx(3.0)
    assert runner.model.training  # train mode restored
    # target 3: reached -> finetune_final.pth saved and the loop told to stop
    hook = LossTargetStopHook(target_loss=3.0, interval=5)
    hook.after_train_iter(runner, batch_idx=9)
    assert runner.train_loop.stop_training and hook.reached
    assert saved[0][0] == (str(tmp_path), 'finetune_final.pth')


def test_checks_only_every_interval(tmp_path):
    runner, saved, _ = _runner(tmp_path, [0.0], {}, iteration=6)  # iteration 7: no check
    LossTargetStopHook(target_loss=1.0, interval=5).after_train_iter(runner, batch_idx=6)
    assert not runner.train_loop.stop_training and not saved


def test_own_dataloader_replaces_val_dataloader(tmp_path):
    """With ``dataloader`` (e.g. val images with coarse labels) the loss is measured on it."""
    runner, saved, built = _runner(tmp_path, [9.0], {'coarse_val': [1.0, 2.0]}, iteration=4)
    cfg = dict(name='coarse_val', batch_size=1)
    hook = LossTargetStopHook(target_loss=1.5, interval=5, dataloader=cfg)
    hook.before_train(runner)
    assert built == [(cfg, 3)]  # built once, with the run's seed
    hook.after_train_iter(runner, batch_idx=4)
    assert runner.message_hub.get_scalar('finetune/val_loss').current() == pytest.approx(1.5)
    assert runner.train_loop.stop_training and saved  # 1.5 <= 1.5; runner.val_dataloader (9) unused


def test_target_is_the_training_loss_before_finetuning(tmp_path):
    """target_dataloader: the target is the loaded model's eval-mode loss over the train set,
    computed once before fine-tuning, stored in checkpoints and restored on resume."""
    runner, saved, built = _runner(tmp_path, [5.0, 3.0], {'train': [2.0, 6.0, 4.0]}, iteration=4)
    hook = LossTargetStopHook(interval=5, target_dataloader=dict(name='train'))
    assert hook.target_loss is None
    hook.before_train(runner)
    assert hook.target_loss == pytest.approx(4.0)  # (2 + 6 + 4) / 3
    assert runner.message_hub.get_scalar('finetune/target_loss').current() == pytest.approx(4.0)
    assert runner.model.training
    hook.after_train_iter(runner, batch_idx=4)  # val loss (5 + 3) / 2 = 4 <= 4: stop
    assert runner.train_loop.stop_training
    ckpt = {'meta': {}}
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['meta']['finetune_target_loss'] == pytest.approx(4.0)
    # a resumed run takes the stored target instead of measuring the resumed weights
    resumed = LossTargetStopHook(interval=5, target_dataloader=dict(name='train'))
    resumed.after_load_checkpoint(runner, ckpt)
    n_built = len(built)
    resumed.before_train(runner)
    assert resumed.target_loss == pytest.approx(4.0) and len(built) == n_built
    # the training checkpoint loaded with load_from has no target: nothing changes
    fresh = LossTargetStopHook(interval=5, target_dataloader=dict(name='train'))
    fresh.after_load_checkpoint(runner, {'meta': {}})
    assert fresh.target_loss is None


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='target_loss must be > 0'):
        LossTargetStopHook(target_loss=0.0, interval=1)
    with pytest.raises(ValueError, match='interval must be an int >= 1'):
        LossTargetStopHook(target_loss=1.0, interval=0)
    with pytest.raises(ValueError, match='needs target_loss or target_dataloader'):
        LossTargetStopHook(interval=1)
    with pytest.raises(TypeError, match='dataloader must be a dataloader config dict'):
        LossTargetStopHook(target_loss=1.0, interval=1, dataloader=[1, 2])
    runner, _, _ = _runner(tmp_path, [], {'train': [0.0]}, iteration=0)
    with pytest.raises(RuntimeError, match='validation dataloader is empty'):
        LossTargetStopHook(target_loss=1.0, interval=1).after_train_iter(runner, batch_idx=0)
    with pytest.raises(ValueError, match='training loss before fine-tuning is 0.0'):
        LossTargetStopHook(interval=1, target_dataloader=dict(name='train')).before_train(runner)
