# Paper optimisation: Adam, lr 5e-4 (no decay is stated: constant lr), validation once per
# epoch and the checkpoint with the highest validation pixel accuracy kept (the paper returns
# "the model with the highest validation accuracy"; aAcc of mmseg's IoUMetric = PixAcc).
# Epoch budgets are expressed in iterations by the dataset-specific schedules
# (adam_5e-4_<dataset>_<N>e.py).
optimizer = dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = []
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # LoggerHook whose test-metrics json only rank 0 writes (docs/design.md "Reliability")
    logger=dict(type='MainProcessLoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',  # CheckpointHook that survives a kill (docs/design.md)
        by_epoch=False,
        interval=100,
        save_best='aAcc',
        rule='greater',
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
