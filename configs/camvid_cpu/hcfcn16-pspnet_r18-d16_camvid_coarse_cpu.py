# CPU-scale CamVid: the HCFCN neck and head in mmseg's stock PSPNet (ResNetV1c-18 at output
# stride 16), as a user's own config puts them there (README "Using the plug-in from your own
# mmseg config"): mmseg's model file as the base, the paper's neck / loss / head settings
# imported from the installed package (mmseg_spixreg/configs/hcfcn.py). The stock PSPHead
# computes the stride-16 logits inside HCFCNHead (logits_head), which upsamples them
# 16 -> 8 -> 4 with the assignments learned on the backbone's stride-4/8/16 outputs; the stock
# auxiliary FCNHead still reads stage 3. SLIC regulariser OFF (lambda = 0): HCFCN-16's analogue.
# Backbone, auxiliary head, data (coarse labels, 160x120 input), schedule and selection exactly
# as the stock baseline ./pspnet_r18-d16_camvid_coarse_cpu.py; random init (pretrained=None).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py', './camvid_coarse_cpu_schedule.py']
from mmseg_spixreg.configs.hcfcn import assignment_neck, hcfcn_head  # noqa: E402

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='SpixEncoderDecoder',
    pretrained=None,
    data_preprocessor=dict(
        type='SpixSegDataPreProcessor', size=_base_.crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    neck=dict(assignment_neck, in_channels=[64, 128, 256, 512], in_strides=[4, 8, 16, 16]),
    # _delete_: HCFCNHead replaces mmseg's PSPHead and wraps a new one (logits_head); the
    # base's PSPHead arguments (pool_scales) are not HCFCNHead arguments
    decode_head=dict(
        hcfcn_head,
        _delete_=True,
        in_channels=512,
        in_index=3,
        channels=128,
        dropout_ratio=0.1,
        num_classes=11,
        norm_cfg=norm_cfg,
        align_corners=False,
        logits_head=dict(type='PSPHead', pool_scales=(1, 2, 3, 6))),
    auxiliary_head=dict(
        in_channels=256,
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)))
# test-time augmentation that keeps pred_superpixels and pred_assignments (SpixASA, ASA eq. 8)
tta_model = dict(type='SpixSegTTAModel')
