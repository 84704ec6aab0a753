import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


@HOOKS.register_module()
class LossTargetStopHook(Hook):
    """Stop training once the validation loss has fallen to a target value.

    This is the paper's fine-tuning rule: after selecting the best-validation checkpoint, training
    continues on train+val "until the loss on the validation set matches the training loss before
    fine-tuning", for at most 15 epochs (the iteration budget of the fine-tuning run's
    ``train_cfg``). Every ``interval`` iterations the mean loss of the model over the validation
    dataloader is computed (eval mode, no gradient; all loss terms of the model, e.g. CE and
    L_SLIC, summed as in training) and logged as ``finetune/val_loss``; when it is
    ``<= target_loss`` the state is saved as ``finetune_final.pth`` and the train loop stops
    (otherwise the checkpoint hook saves the last iteration as usual).

    The validation loss must be measured on labels of the kind the model is trained on: when
    training on coarse labels, pass ``dataloader`` over the validation images with their
    coarse labels (``tools/run_experiment.py`` builds it from the config's
    ``finetune_val_dataset``); by default the runner's ``val_dataloader`` is used.

    Args:
        target_loss (float): The training loss reached before fine-tuning.
        interval (int): Check every ``interval`` training iterations (e.g. one epoch).
        dataloader (dict, optional): Dataloader config (as ``val_dataloader``) of the data the
            validation loss is computed on. Default: None (the runner's ``val_dataloader``).
    """

    priority = 'LOW'
    #: File name (in the work dir) of the checkpoint saved when the target is reached.
    FINAL_CKPT = 'finetune_final.pth'

    def __init__(self, target_loss, interval, dataloader=None):
        if not target_loss > 0:
            raise ValueError(f'target_loss must be > 0, got {target_loss}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if dataloader is not None and not isinstance(dataloader, dict):
            raise TypeError(f'dataloader must be a dataloader config dict or None, got '
                            f'{type(dataloader).__name__}')
        self.target_loss = float(target_loss)
        self.interval = int(interval)
        self.dataloader_cfg = dataloader
        self._dataloader = None
        self.reached = False

    def before_train(self, runner):
        if self.dataloader_cfg is not None:
            self._dataloader = runner.build_dataloader(dict(self.dataloader_cfg),
                                                       seed=runner.seed)

    @torch.no_grad()
    def validation_loss(self, runner):
        """Mean total loss of the model over ``dataloader`` (default ``runner.val_dataloader``)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        loader = self._dataloader if self._dataloader is not None else runner.val_dataloader
        for data in loader:
            data = model.data_preprocessor(data, True)
            losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            total += float(loss)
            count += 1
        model.train(was_training)
        if count == 0:
            raise RuntimeError('LossTargetStopHook: the validation dataloader is empty')
        return total / count

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not self.every_n_train_iters(runner, self.interval):
            return
        val_loss = self.validation_loss(runner)
        runner.message_hub.update_scalar('finetune/val_loss', val_loss)
        print_log(f'fine-tuning: validation loss {val_loss:.4f} (target {self.target_loss:.4f})',
                  logger='current')
        if val_loss <= self.target_loss:
            self.reached = True
            print_log('fine-tuning: target reached, stopping; saving '
                      f'{self.FINAL_CKPT}', logger='current')
            runner.save_checkpoint(runner.work_dir, self.FINAL_CKPT, save_optimizer=False,
                                   save_param_scheduler=False)
            runner.train_loop.stop_training = True
