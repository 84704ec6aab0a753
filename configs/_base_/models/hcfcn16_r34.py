# HCFCN-16 (Suzuki 2021) on the FCN-16 baseline's backbone: A(4) and A(8) are learned from the
# feature pairs (x(s), z(2s)) at the two DCN downsamplings; the stride-16 logits are
# superpixel-upsampled 16 -> 8 -> 4 and bilinearly 4 -> 1. The paper's levels, K, tau and m come
# and the head's loss from ./hcfcn.py; the SLIC regulariser is OFF here (lambda =
# loss_slic.loss_weight = 0): the regularized configs (configs/hcfcn_r34_*.py) set lambda.
# SpixSegDataPreProcessor keeps the un-normalised image for L_SLIC; SpixEncoderDecoder adds
# `pred_superpixels` (hard ids, SpixASA) and `pred_assignments` (soft A(4), A(8), ASA by eq. 8) to
# the predictions; SpixSegTTAModel keeps them under test-time augmentation.
_base_ = ['./fcn16_r34.py', './hcfcn.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='SpixEncoderDecoder',
    data_preprocessor=dict(type='SpixSegDataPreProcessor'),
    neck=dict(_base_.assignment_neck, in_channels=[64, 128, 256], in_strides=[4, 8, 16]),
    # _delete_: HCFCNHead replaces FCNHead, whose `concat_input` HCFCNHead does not take; the
    # classifier itself is FCN-16's (1x1 conv_seg on conv4_x, dropout 0.1)
    decode_head=dict(
        _base_.hcfcn_head,
        _delete_=True,
        in_channels=256,
        in_index=2,
        channels=256,
        num_convs=0,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False))
# test-time augmentation that keeps pred_superpixels and pred_assignments (SpixASA, ASA eq. 8)
tta_model = dict(type='SpixSegTTAModel')
