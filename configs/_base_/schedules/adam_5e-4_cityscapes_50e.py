# 50 epochs on the paper's Cityscapes train split (2975 train images minus the 606 of the
# validation cities Aachen, Monchengladbach, Stuttgart, Weimar = 2369) at batch 8:
# ceil(2369 / 8) = 297 iterations per epoch; validation + best-accuracy checkpoint every epoch.
_base_ = ['./adam_5e-4.py']
iters_per_epoch = 297
train_cfg = dict(max_iters=50 * iters_per_epoch, val_interval=iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=iters_per_epoch))
