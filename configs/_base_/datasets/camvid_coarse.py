# CamVid trained with coarse labels made by the project's tool (N = 12 at 480x360), validated on
# the fine val labels. The coarse labels live outside git, under data/ in the repository root:
#   python tools/dataset_converters/make_coarse_labels.py data/camvid/trainannot \
#       data/camvid_coarse/n12/trainannot --erode 12 --ignore-index 11 255
# and, for fine-tuning on train+val (experiments/run_experiment.py --finetune), the val split too:
#   python tools/dataset_converters/make_coarse_labels.py data/camvid/valannot \
#       data/camvid_coarse/n12/valannot --erode 12 --ignore-index 11 255
# For another N, generate .../n<N>/trainannot and override `seg_map_path` below.
# data_root '.' = the repository root, so the image folder (data/camvid) and the coarse label
# folder (data/camvid_coarse) can both be given relative to it.
_base_ = './camvid.py'
camvid_root = 'data/camvid'
coarse_root = 'data/camvid_coarse/n12'
train_dataloader = dict(
    dataset=dict(
        data_root='.',
        data_prefix=dict(img_path=camvid_root + '/train', seg_map_path=coarse_root + '/trainannot'),
        # named in the error when the coarse labels are missing (CamVidDataset)
        prepare_hint='python tools/dataset_converters/make_coarse_labels.py '
        'data/camvid/trainannot data/camvid_coarse/n12/trainannot '
        '--erode 12 --ignore-index 11 255'))
# Fine-tuning on train+val (experiments/run_experiment.py --finetune) adds the val images with their
# COARSE labels (merged over val_dataloader.dataset; also used for the stop rule's val loss).
finetune_val_dataset = dict(
    data_root='.',
    data_prefix=dict(img_path=camvid_root + '/val', seg_map_path=coarse_root + '/valannot'),
    prepare_hint='python tools/dataset_converters/make_coarse_labels.py '
    'data/camvid/valannot data/camvid_coarse/n12/valannot '
    '--erode 12 --ignore-index 11 255')
