# FCN-16 on Cityscapes coarse labels (gtCoarse) with every option of the thesis's own code
# (configs/_base_/original_code.py; configs/original/README.md).
_base_ = ['../fcn16_r34_cityscapes_coarse.py', '../_base_/original_code.py']
model = dict(
    data_preprocessor=_base_.original_data_preprocessor,
    backbone=_base_.original_backbone,
    decode_head=_base_.original_classifier)
val_evaluator = _base_.original_evaluator
test_evaluator = val_evaluator
