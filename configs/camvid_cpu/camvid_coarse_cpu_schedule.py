# Data + schedule shared by the CPU-scale CamVid reproduction (README "Results"): CamVid COARSE
# labels (the tool's N = 12 at 480x360), images at a third of the resolution (160x120; random
# 112x160 crops + flip for training, batch 4), Adam 5e-4, a schedule that fits 2 CPU cores.
# Evaluated on the FINE labels at full resolution (480x360): predictions are resized back
# before the metrics.
# The 101 CamVid val frames (one sequence, sorted by name) are split in time:
#   val  = frames 0..49: checkpoint selection (best pixel accuracy) only;
#   test = frames 50..100: the reported numbers, never trained on or selected with.
# `experiments/run_experiment.py --finetune` adds the val frames (with their COARSE labels) to the
# training set and takes the stop rule's val loss on them: finetune_val_dataset.
_base_ = [
    '../_base_/datasets/camvid_coarse.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adam_5e-4.py'
]
crop_size = (112, 160)
# camvid.py's training pipeline with the resize to 160x120 before the crop
train_pipeline = [
    *_base_.train_pipeline[:3],  # load the image and labels, check the labels
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    *_base_.train_pipeline[4:]  # flip, pack
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    # annotations loaded after Resize: metrics on the full-resolution fine labels
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=11),
    dict(type='PackSegInputs')
]
val_frames = list(range(50))
test_frames = list(range(50, 101))
# Every loader names its pipeline next to its frames: a dict given here is merged over the base's
# loader key by key, and `dict(a, dataset=dict(...))` would replace a's whole `dataset` (pipeline
# included) before that merge.
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline, indices=val_frames))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline, indices=test_frames))
finetune_val_dataset = dict(indices=val_frames)
# 367 images / batch 4 = 92 iterations per epoch; 300 iterations (~3.3 epochs: where the val
# curves flatten, README "Results"), validation + best-accuracy (aAcc) checkpoint every 50
train_cfg = dict(max_iters=300, val_interval=50)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=50))
