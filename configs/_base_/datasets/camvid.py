# CamVid, 11-class SegNet version (480x360) at data/camvid (relative to the repository root, where
# tools/train.py runs; tools/dataset_converters/link_camvid.py puts it there, docs/data.md).
# train/ + trainannot/ (367), val/ + valannot/ (101);
# label 11 (void) -> 255 by CamVidDataset. The val split also serves as test split here (the
# 233-image test split is not in the shared copy).
# Training: random 352x352 crop (the largest multiple of 16 that fits the 360 px height) and
# horizontal flip, the paper's augmentation scaled to CamVid's size.
_base_ = './loaders.py'
dataset_type = 'CamVidDataset'
data_root = 'data/camvid'
crop_size = (352, 352)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=11, check_size=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=11, check_size=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal')
        ], [dict(type='LoadSegAnnotations')], [dict(type='CheckSegLabels', num_classes=11)],
                    [dict(type='PackSegInputs')]])
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train', seg_map_path='trainannot'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='val', seg_map_path='valannot'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
