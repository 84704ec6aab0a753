# HCFCN-16 on SUIM (coarse labels made on the fly) with every option of the thesis's own code
# (configs/_base_/original_code.py; configs/original/README.md).
_base_ = ['../hcfcn16_r34_suim_coarse.py', '../_base_/original_code.py']
model = dict(
    data_preprocessor=_base_.original_data_preprocessor,
    backbone=_base_.original_backbone,
    neck=_base_.original_neck,
    decode_head=dict(_base_.original_classifier, loss_slic=_base_.original_slic_loss))
# coarse labels made on the fly from the fine ones, after the random crop and flip
train_pipeline = _base_.train_pipeline[:-1] + [
    _base_.original_coarse_labels, dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(seg_map_path='ann_dir/train_val'),
        pipeline=train_pipeline,
        prepare_hint='python tools/dataset_converters/suim.py SUIM_ROOT data/suim'))
val_evaluator = _base_.original_evaluator
test_evaluator = val_evaluator
