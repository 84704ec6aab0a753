# 75 epochs on the paper's SUIM train split (1525 train_val images minus 150 held out for
# validation = 1375) at batch 8: ceil(1375 / 8) = 172 iterations per epoch; validation +
# best-accuracy checkpoint every epoch.
_base_ = ['./adam_5e-4.py']
iters_per_epoch = 172
train_cfg = dict(max_iters=75 * iters_per_epoch, val_interval=iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=iters_per_epoch))
