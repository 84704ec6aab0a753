# GPU CamVid campaign: FCN-16 (ResNet34-DCN, OS16, bilinear upsampling), random init.
_base_ = ['../_base_/models/fcn16_r34.py', './camvid_gpu_schedule.py']
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(init_cfg=None),
    decode_head=dict(num_classes=11))
