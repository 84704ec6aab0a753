# The loaders and metrics that camvid.py, cityscapes_1024x512.py and suim.py share; each of them
# adds the training batch size and the `dataset` of every loader (its type, root, split and
# pipeline). Evaluation runs one image at a time.
# mIoU + pixel accuracy, boundary recall (BR: Stutz, BR_paper: eq. 7), ASA (eq. 8, from the
# model's `pred_assignments`), classification error and the hard superpixels' SpixASA / SpixBR
# (HCFCN models only; stock segmentors get PixAcc, BR and BR_paper).
train_dataloader = dict(
    num_workers=2, persistent_workers=True, sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='SuperpixelBoundaryMetric')
]
test_evaluator = val_evaluator
