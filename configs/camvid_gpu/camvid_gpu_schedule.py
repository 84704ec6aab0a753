# Data + schedule of the GPU CamVid campaign (experiments/gpu_campaign.py, docs/results.md):
# CamVid at full resolution (480x360) from the packed copy (experiments/pack_camvid.py:
# JPEG q95 images, coarse N = 12 training labels made by the project's tool), random 352x480
# crops + horizontal flip, batch 8, Adam 5e-4 (constant), validation every 5 epochs.
# The 101 CamVid val frames (one sequence, sorted by name) are split in time, as in
# ../camvid_cpu/camvid_coarse_cpu_schedule.py:
#   val  = frames 0..49: checkpoint selection only (fine labels);
#   test = frames 50..100: the reported numbers (fine labels), never trained on or selected with.
# `epochs` sets the budget: experiments/gpu_campaign.py passes train_cfg.max_iters / val_interval /
# checkpoint interval for its --epochs (46 iterations per epoch: 367 images / batch 8).
_base_ = [
    '../_base_/datasets/camvid.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adam_5e-4.py'
]
pack_root = 'data/camvid_pack'
crop_size = (352, 480)
val_frames = list(range(50))
test_frames = list(range(50, 101))
# camvid.py's training pipeline with the 352x480 crop
train_pipeline = [
    *_base_.train_pipeline[:3],  # load the image and labels, check the labels
    dict(type='RandomCrop', crop_size=crop_size),
    *_base_.train_pipeline[4:]  # flip, pack
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        data_root=pack_root,
        img_suffix='.jpg',
        data_prefix=dict(img_path='train', seg_map_path='coarse_n12/trainannot'),
        pipeline=train_pipeline))
# the packed val sequence with its FINE labels, split in time into val and test frames
packed_val = dict(
    data_root=pack_root,
    img_suffix='.jpg',
    data_prefix=dict(img_path='val', seg_map_path='valannot'))
val_dataloader = dict(num_workers=4, dataset=dict(packed_val, indices=val_frames))
test_dataloader = dict(num_workers=4, dataset=dict(packed_val, indices=test_frames))
# 30 epochs (46 iterations each), validation + best checkpoint every 5 epochs
train_cfg = dict(max_iters=30 * 46, val_interval=5 * 46)
default_hooks = dict(logger=dict(interval=46), checkpoint=dict(interval=5 * 46))
