# HCFCN upsampling swapped into a stock mmseg DeepLabV3 (ResNet50V1c), as Suzuki did with
# other segmentors: mmseg's own DeepLabV3 model config is the base; the backbone runs at output
# stride 16 (conv5_x dilated instead of conv4_x+conv5_x), the AssignmentNeck pairs consecutive-
# stride stage outputs (stride 4 with 8, 8 with 16) of the stock ResNetV1c, the stock ASPPHead
# computes the stride-16 logits inside HCFCNHead, which upsamples them 16 -> 8 -> 4 with the
# assignments; the stock auxiliary FCNHead still reads stage 3 by in_index. The paper's levels,
# K, tau, m and the head's loss come from _base_/models/hcfcn.py; regularized (lambda = 0.075).
# Plain BN instead of the base's SyncBN (single GPU / CPU); use SyncBN for multi-GPU training.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', './_base_/models/hcfcn.py',
    './_base_/datasets/cityscapes_1024x512.py', './_base_/default_runtime.py',
    './_base_/schedules/adam_5e-4_cityscapes_50e.py'
]
# test-time augmentation that keeps pred_superpixels and pred_assignments (SpixASA, ASA eq. 8);
# stated here because the model base is mmseg's, not _base_/models/hcfcn16_r34.py
tta_model = dict(type='SpixSegTTAModel')
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='SpixEncoderDecoder',
    data_preprocessor=dict(
        type='SpixSegDataPreProcessor', size=(512, 512), test_cfg=dict(size_divisor=16)),
    backbone=dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    neck=dict(
        _base_.assignment_neck, in_channels=[256, 512, 1024, 2048], in_strides=[4, 8, 16, 16]),
    # _delete_: HCFCNHead replaces mmseg's ASPPHead and wraps a new one (logits_head); the base's
    # ASPPHead arguments (dilations for output stride 8) are not HCFCNHead arguments
    decode_head=dict(
        _base_.hcfcn_head,
        _delete_=True,
        in_channels=2048,
        in_index=3,
        channels=512,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        # the stride-16 logits (the backbone runs at output stride 16)
        logits_head=dict(type='ASPPHead', dilations=(1, 6, 12, 18)),
        loss_slic=dict(_base_.slic_loss, loss_weight=0.075)),
    auxiliary_head=dict(norm_cfg=norm_cfg))
