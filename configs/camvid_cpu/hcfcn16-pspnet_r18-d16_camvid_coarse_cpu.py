# CPU-scale CamVid: the HCFCN neck and head in mmseg's stock PSPNet (ResNetV1c-18 at output
# stride 16), as a user's own config puts them there (README "Using the plug-in from your own
# mmseg config"): mmseg's model file as the base, the paper's neck / loss / head settings
# imported from the installed package (mmseg_spixreg/configs/hcfcn.py). The stock PSPHead
# computes the stride-16 logits inside HCFCNHead (logits_head), which upsamples them
# 16 -> 8 -> 4 with the assignments learned on the backbone's stride-4/8/16 outputs; the stock
# auxiliary FCNHead still reads stage 3. SLIC regulariser OFF (lambda = 0): HCFCN-16's analogue.
# Built on the stock baseline ./pspnet_r18-d16_camvid_coarse_cpu.py (itself on mmseg's model
# file), so backbone, auxiliary head, data (coarse labels, 160x120 input), schedule and selection
# are exactly its own; random init (pretrained=None).
_base_ = ['./pspnet_r18-d16_camvid_coarse_cpu.py']
from mmseg_spixreg.configs.hcfcn import assignment_neck, hcfcn_head  # noqa: E402

norm_cfg = dict(type='BN', requires_grad=True)  # the base's (a _base_ reference adds a scope key)
model = dict(
    type='SpixEncoderDecoder',
    data_preprocessor=dict(type='SpixSegDataPreProcessor'),
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
        logits_head=dict(type='PSPHead', pool_scales=(1, 2, 3, 6))))
# test-time augmentation that keeps pred_superpixels and pred_assignments (SpixASA, ASA eq. 8)
tta_model = dict(type='SpixSegTTAModel')
