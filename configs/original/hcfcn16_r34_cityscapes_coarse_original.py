# HCFCN-16 on Cityscapes coarse labels (gtCoarse) with every option of the thesis's own code
# (configs/_base_/original_code.py; configs/original/README.md).
_base_ = ['../hcfcn16_r34_cityscapes_coarse.py', '../_base_/original_code.py']
model = dict(
    data_preprocessor=_base_.original_data_preprocessor,
    backbone=_base_.original_backbone,
    neck=_base_.original_neck,
    decode_head=dict(_base_.original_classifier, loss_slic=_base_.original_slic_loss))
val_evaluator = _base_.original_evaluator
test_evaluator = val_evaluator
