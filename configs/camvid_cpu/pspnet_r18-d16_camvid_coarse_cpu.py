# CPU-scale CamVid, a stock mmseg model: PSPNet with a ResNetV1c-18 (as mmseg's pspnet_r18-d8
# configs build it: depth 18, PSPHead 512 -> 128 channels, auxiliary FCNHead 256 -> 64) at output
# stride 16 instead of 8 (conv5_x dilated, conv4_x strided: strides (1, 2, 2, 1), dilations
# (1, 1, 1, 2), as mmseg's d16 variants), bilinear upsampling of the stride-16 logits: the
# baseline of the two HCFCN-in-PSPNet configs next to this one. Same data, coarse labels, 160x120
# input, schedule and selection as the other CamVid CPU configs (./camvid_coarse_cpu_schedule.py).
# Two settings differ from mmseg's model file, for the comparison with the HCFCN configs:
#   * plain BN (mmseg's file: SyncBN, which needs a distributed run);
#   * the cross-entropies (decode and auxiliary) averaged over the labelled pixels
#     (avg_non_ignore, as HCFCNHead's and the other CPU configs'): with coarse labels mmseg's
#     default would divide by all pixels, unlabelled ones included.
# Random init: pretrained=None (mmseg's r18 configs load 'open-mmlab://resnet18_v1c', a download;
# set model.pretrained='open-mmlab://resnet18_v1c' for ImageNet weights).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py', './camvid_coarse_cpu_schedule.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    # training batches padded to the crop, test inputs to a multiple of the output stride (the
    # padding is removed again before the metrics), as in the other CPU configs
    data_preprocessor=dict(size=_base_.crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=128,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(
        in_channels=256,
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)))
tta_model = dict(type='SegTTAModel')
