# Data + schedule shared by the CPU-scale CamVid reproduction (README "Results"): CamVid COARSE
# labels (the tool's N = 12 at 480x360), images at a third of the resolution (160x120; random
# 112x160 crops + flip for training, batch 4), Adam 5e-4, a short schedule that fits 2 CPU cores. Evaluated on the FINE
# val labels at full resolution (480x360): predictions are resized back before the metrics.
_base_ = [
    '../_base_/datasets/camvid_coarse.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adam_5e-4.py'
]
crop_size = (112, 160)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=11, check_size=True),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    # annotations loaded after Resize: metrics on the full-resolution fine labels
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=11),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# 367 images / batch 4 = 92 iterations per epoch; 240 iterations (~2.6 epochs), validation +
# best-accuracy (aAcc) checkpoint at 120 and 240 (about 4 minutes per run on 2 CPU cores)
train_cfg = dict(max_iters=240, val_interval=120)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=120))
