# Cityscapes at 1024x512 with FINE labels, the paper's split:
#   train = train cities minus Aachen, Monchengladbach, Stuttgart, Weimar (splits/train.txt)
#   val   = those four cities (splits/val.txt, images under leftImg8bit/train)
#   test  = the official val set (splits/test.txt, images under leftImg8bit/val)
# Prepare with:
#   python tools/dataset_converters/cityscapes_coarse.py /path/to/cityscapes \
#       data/cityscapes_1024x512
# Training: random 512x512 crop + horizontal flip (the paper's augmentation). The converter already
# resized everything to 1024x512; the Resize steps are no-ops then and keep raw 2048x1024 data at
# the paper's resolution otherwise.
# SpixCityscapesDataset = mmseg's CityscapesDataset + a FileNotFoundError naming what is missing
# and the converter command above (instead of `AssertionError: Failed to load ann_file`).
_base_ = './loaders.py'
dataset_type = 'SpixCityscapesDataset'
data_root = 'data/cityscapes_1024x512/'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=19, check_size=True),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadSegAnnotations'),
    dict(type='CheckSegLabels', num_classes=19),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[[dict(type='Resize', scale=(1024, 512), keep_ratio=True)],
                    [
                        dict(type='RandomFlip', prob=0., direction='horizontal'),
                        dict(type='RandomFlip', prob=1., direction='horizontal')
                    ], [dict(type='LoadSegAnnotations')],
                    [dict(type='CheckSegLabels', num_classes=19)], [dict(type='PackSegInputs')]])
]
# batch 8: the paper's, and what the schedules' epochs -> iterations conversion assumes
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='splits/train.txt',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(train_dataloader['dataset'], ann_file='splits/val.txt', pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        val_dataloader['dataset'],
        ann_file='splits/test.txt',
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')))
