# Copyright (c) mmseg-spixreg contributors. All rights reserved.
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class LossTargetStopHook(Hook):
    """Stop training once the validation loss has fallen to the training loss before fine-tuning.

    This is the paper's fine-tuning rule: after selecting the best-validation checkpoint, training
    continues on train+val "until the loss on the validation set matches the training loss before
    fine-tuning", for at most 15 epochs (the iteration budget of the fine-tuning run's
    ``train_cfg``). Every ``interval`` iterations the mean loss of the model over the validation
    data is computed (eval mode, no gradient; all loss terms of the model, e.g. CE and L_SLIC,
    summed as in training) and logged as ``finetune/val_loss``; when it is ``<= target_loss`` the
    state is saved as ``finetune_final.pth`` and the train loop stops (otherwise the checkpoint
    hook saves the last iteration as usual).

    Both sides are measured the same way: with ``target_dataloader`` (the training set without
    augmentation) the target is the model's mean loss over it at the start of fine-tuning, in
    eval mode like the validation loss, i.e. the training-set objective of the loaded checkpoint
    (a running mean of logged training losses would include dropout and augmentation and sit
    above an eval-mode validation loss from the first check on). The computed target is logged
    (``finetune/target_loss``) and stored in the checkpoints' meta, so a resumed run keeps it.

    The validation loss must be measured on labels of the kind the model is trained on: when
    training on coarse labels, pass ``dataloader`` over the validation images with their coarse
    labels (``experiments/run_experiment.py`` builds it from the config's
    ``finetune_val_dataset``); by default the runner's ``val_dataloader`` is used.

    Args:
        interval (int): Check every ``interval`` training iterations (e.g. one epoch).
        target_loss (float, optional): A fixed target. Default: None (computed from
            ``target_dataloader``).
        dataloader (dict, optional): Dataloader config (as ``val_dataloader``) of the data the
            validation loss is computed on. Default: None (the runner's ``val_dataloader``).
        target_dataloader (dict, optional): Dataloader config of the training data the target is
            computed on when ``target_loss`` is None.
    """

    priority = 'LOW'
    #: File name (in the work dir) of the checkpoint saved when the target is reached.
    FINAL_CKPT = 'finetune_final.pth'
    #: Key of the target in the checkpoints' ``meta``.
    META_KEY = 'finetune_target_loss'

    def __init__(self, interval, target_loss=None, dataloader=None, target_dataloader=None):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be an int >= 1, got {interval!r}')
        if target_loss is None and target_dataloader is None:
            raise ValueError('LossTargetStopHook needs target_loss or target_dataloader (the '
                             'training data the target loss is measured on)')
        if target_loss is not None and not target_loss > 0:
            raise ValueError(f'target_loss must be > 0, got {target_loss}')
        for name, cfg in (('dataloader', dataloader), ('target_dataloader', target_dataloader)):
            if cfg is not None and not isinstance(cfg, dict):
                raise TypeError(f'{name} must be a dataloader config dict or None, got '
                                f'{type(cfg).__name__}')
        self.interval = interval
        self.target_loss = None if target_loss is None else float(target_loss)
        self.dataloader_cfg = dataloader
        self.target_dataloader_cfg = target_dataloader
        self._dataloader = None
        self.reached = False

    @torch.no_grad()
    def mean_loss(self, runner, dataloader, what='validation'):
        """Mean total loss of the model over ``dataloader`` (eval mode, no gradient)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            for data in dataloader:
                data = model.data_preprocessor(data, True)
                losses = model(**data, mode='loss')
                loss, _ = model.parse_losses(losses)
                total += float(loss)
                count += 1
        finally:
            model.train(was_training)
        if count == 0:
            raise RuntimeError(f'LossTargetStopHook: the {what} dataloader is empty')
        return total / count

    def validation_loss(self, runner):
        """Mean total loss over ``dataloader`` (default ``runner.val_dataloader``)."""
        loader = self._dataloader if self._dataloader is not None else runner.val_dataloader
        return self.mean_loss(runner, loader)

    def after_load_checkpoint(self, runner, checkpoint):
        target = checkpoint.get('meta', {}).get(self.META_KEY)
        if target is not None:  # a resumed fine-tuning run keeps its target
            self.target_loss = float(target)

    def before_save_checkpoint(self, runner, checkpoint):
        if self.target_loss is not None:
            checkpoint.setdefault('meta', {})[self.META_KEY] = self.target_loss

    def before_train(self, runner):
        if self.dataloader_cfg is not None:
            self._dataloader = runner.build_dataloader(dict(self.dataloader_cfg), seed=runner.seed)
        if self.target_loss is None:
            loader = runner.build_dataloader(dict(self.target_dataloader_cfg), seed=runner.seed)
            target = self.mean_loss(runner, loader, what='training (target)')
            if not target > 0:
                raise ValueError(f'LossTargetStopHook: the training loss before fine-tuning is '
                                 f'{target}; a stop target must be > 0')
            self.target_loss = target
        runner.message_hub.update_scalar('finetune/target_loss', self.target_loss)
        print_log(
            f'fine-tuning: target loss {self.target_loss:.4f} (training loss before '
            'fine-tuning)',
            logger='current')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not self.every_n_train_iters(runner, self.interval):
            return
        if self.target_loss is None:
            raise RuntimeError('LossTargetStopHook: no target loss (before_train did not run)')
        val_loss = self.validation_loss(runner)
        runner.message_hub.update_scalar('finetune/val_loss', val_loss)
        print_log(
            f'fine-tuning: validation loss {val_loss:.4f} (target {self.target_loss:.4f})',
            logger='current')
        if val_loss <= self.target_loss:
            self.reached = True
            print_log('fine-tuning: target reached, stopping; saving '
                      f'{self.FINAL_CKPT}',
                      logger='current')
            runner.save_checkpoint(
                runner.work_dir, self.FINAL_CKPT, save_optimizer=False, save_param_scheduler=False)
            runner.train_loop.stop_training = True
