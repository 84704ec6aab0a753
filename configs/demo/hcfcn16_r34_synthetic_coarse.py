# `make demo`: HCFCN-16 (no SLIC regulariser) on the generated data set, coarse training labels,
# a short CPU schedule (random init: no pretrained weights on a machine without internet).
_base_ = [
    '../_base_/models/hcfcn16_r34.py', '../_base_/datasets/synthetic_regions.py',
    '../_base_/default_runtime.py', '../_base_/schedules/adam_5e-4.py'
]
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
    decode_head=dict(num_classes=5))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='SuperpixelBoundaryMetric'),
]
test_evaluator = val_evaluator
train_cfg = dict(max_iters=300, val_interval=300)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=300, save_best=None))
randomness = dict(seed=0)
