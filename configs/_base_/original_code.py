# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# The thesis's own code where it differs from the thesis text (configs/original/README.md):
# the one home of these options, partial configs that configs/original/* merge over the
# paper configs. Not a model: no `model` key. The defaults of the modules stay the text's.
#   raw input:   RGB / 255, no mean/std (the SLIC image stays the un-normalised RGB)
#   backbone:    random init; DCNv2 on conv1 and the shortcut of the first block of conv3_x /
#                conv4_x, the shortcut a 3x3 stride-2 DCNv2 with bias; modulation sigmoid (0.5 at
#                init)
#   classifier:  3x3 conv 256 -> 64 + BN + ReLU, Dropout(0.1), 1x1 to the classes (FCN-16 and
#                HCFCN-16 alike)
#   assignment:  dot products of the projected embeddings / tau, out-of-map seeds in the softmax
#                with logit 0
#   L_SLIC:      on the stride-4 grid (image bilinearly resized), positions / 8^2
#   coarse:      labels made on the fly after the random crop and flip (square erosion, later
#                classes overwrite), where a data set has no coarse annotations of its own
#   metrics:     PixAcc_orig, BR_orig, ASA_orig (per image, mean over images)
# The original validates with BN / dropout in train mode; these configs validate in eval mode
# (mmengine's ValLoop), so their validation numbers are not noisier than the test's.
original_data_preprocessor = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
original_backbone = dict(
    init_cfg=None, dcn_shortcut_kernel_size=3, dcn_shortcut_bias=True, dcn_modulation='sigmoid')
original_classifier = dict(num_convs=1, kernel_size=3, channels=64, dropout_ratio=0.1)
original_neck = dict(similarity='dot')
original_slic_loss = dict(protocol='original')
original_coarse_labels = dict(type='CoarsenLabels', protocol='original', erode=12)
original_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='SuperpixelBoundaryMetric', protocol='original')
]
