# HCFCN-16 at the CamVid CPU scale (configs/camvid_cpu/) with every option of the thesis's own
# code (configs/_base_/original_code.py; configs/original/README.md). The coarse
# labels are made on the fly from the FINE training labels after the resize to 160x120, the
# random crop and the flip: N = 4 there is the N = 12 of 480x360 (a 9x9 square erosion).
_base_ = ['../camvid_cpu/hcfcn16_r34_camvid_coarse_cpu.py', '../_base_/original_code.py']
model = dict(
    data_preprocessor=_base_.original_data_preprocessor,
    backbone=_base_.original_backbone,
    neck=_base_.original_neck,
    decode_head=dict(_base_.original_classifier, loss_slic=_base_.original_slic_loss))
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(_base_.original_coarse_labels, erode=4),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(seg_map_path=_base_.camvid_root + '/trainannot'),
        pipeline=train_pipeline,
        prepare_hint='python tools/dataset_converters/link_camvid.py (docs/data.md)'))
val_evaluator = _base_.original_evaluator
test_evaluator = val_evaluator
