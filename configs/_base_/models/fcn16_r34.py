# FCN-16 baseline (Suzuki 2021): ResNet34 without conv5_x (output stride 16) whose stride-2
# convolutions are DCNv2, a 1x1 classifier on conv4_x (stride 16) and bilinear upsampling.
# The classifier is the same as HCFCN-16's, so FCN-16 vs HCFCN-16 isolates the upsampling.
#
# Normalisation: plain BN (single GPU / CPU). For multi-GPU training switch every norm_cfg to
# SyncBN, e.g. `--cfg-options model.backbone.norm_cfg.type=SyncBN`.
# Pretrained: torchvision's ImageNet ResNet34 (`torchvision://resnet34`, downloaded by mmengine
# on first use); set `model.backbone.init_cfg=None` for random init (as the tests do).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),  # training batches padded to the 512x512 crop
    # whole-image test inputs padded to the output stride (removed again in postprocessing)
    test_cfg=dict(size_divisor=16))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DCNResNet',
        depth=34,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(0, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    decode_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=256,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        # mean over labelled pixels (as PyTorch's CE): keeps the CE : lambda L_SLIC balance
        # independent of the labelled fraction of coarse annotations
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# mmseg's test-time augmentation model (flip / multi-scale logits averaged); it comes with the
# model base because HCFCN models need another one (_base_/models/hcfcn16_r34.py) and mmengine
# does not let one base override another.
tta_model = dict(type='SegTTAModel')
