# CPU-scale CamVid reproduction: HCFCN-16 without the regulariser (lambda = 0), random init.
_base_ = ['../_base_/models/hcfcn16_r34.py', './camvid_coarse_cpu_schedule.py']
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(init_cfg=None),
    decode_head=dict(num_classes=11))
