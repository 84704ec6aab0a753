# SUIM with simulated coarse training labels (the paper's protocol: erode by N = 12 px,
# Douglas-Peucker polygons, rest ignored), validated and tested on fine labels. Make them with:
#   python tools/dataset_converters/make_coarse_labels.py data/suim/ann_dir/train_val \
#       data/suim/ann_dir_coarse_n12/train_val --erode 12
# (val images are in the same folder but only the train split reads the coarse labels).
_base_ = './suim.py'
# named in the error when the data is missing (SUIMDataset), steps in order
coarse_prepare_hint = [
    'python tools/dataset_converters/suim.py SUIM_ROOT data/suim',
    'python tools/dataset_converters/make_coarse_labels.py data/suim/ann_dir/train_val '
    'data/suim/ann_dir_coarse_n12/train_val --erode 12'
]
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(img_path='img_dir/train_val', seg_map_path='ann_dir_coarse_n12/train_val'),
        prepare_hint=coarse_prepare_hint))
# Fine-tuning on train+val (experiments/run_experiment.py --finetune) adds the val images with their
# COARSE labels (merged over val_dataloader.dataset; also used for the stop rule's val loss).
finetune_val_dataset = dict(
    data_prefix=dict(img_path='img_dir/train_val', seg_map_path='ann_dir_coarse_n12/train_val'),
    prepare_hint=coarse_prepare_hint)
