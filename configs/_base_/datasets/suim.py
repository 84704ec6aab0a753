# SUIM (8 classes), converted and halved by tools/dataset_converters/suim.py:
#   python tools/dataset_converters/suim.py /path/to/SUIM data/suim
# The paper's split: splits/train.txt + splits/val.txt (150 random images of train_val, seed 0)
# and the official TEST set as splits/test.txt. Training: random 512x512 crop + horizontal flip;
# images smaller than the crop are padded to it by the model's data preprocessor
# (`size=crop_size`), as in mmseg.
_base_ = './loaders.py'
dataset_type = 'SUIMDataset'
data_root = 'data/suim/'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=8, check_size=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=8, check_size=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal')
        ], [dict(type='LoadSegAnnotations')], [dict(type='CheckSegLabels', num_classes=8)],
                    [dict(type='PackSegInputs')]])
]
# batch 8: the paper's, and what the schedules' epochs -> iterations conversion assumes
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='splits/train.txt',
        data_prefix=dict(img_path='img_dir/train_val', seg_map_path='ann_dir/train_val'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(train_dataloader['dataset'], ann_file='splits/val.txt', pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        val_dataloader['dataset'],
        ann_file='splits/test.txt',
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test')))
