# The generated data set of mmseg_spixreg.utils.synthetic_data (what `make demo` trains on).
# data_root is filled in by tools/demo.py (or --cfg-options data_root=...); coarse labels live
# beside the fine ones in ann_dir_coarse/ (written by
# tools/dataset_converters/make_coarse_labels.py).
dataset_type = 'BaseSegDataset'
data_root = 'work_dirs/demo/data'
metainfo = dict(
    classes=('sky', 'grass', 'road', 'wall', 'water'),
    palette=[[120, 170, 230], [60, 160, 60], [110, 110, 110], [190, 120, 80], [40, 70, 160]])
crop_size = (128, 128)
train_ann_dir = 'ann_dir_coarse/train'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=5, check_size=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=5, check_size=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.png',
        seg_map_suffix='.png',
        data_prefix=dict(img_path='img_dir/train', seg_map_path=train_ann_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        train_dataloader['dataset'],
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
