# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# The paper's fixed HCFCN hyper-parameters (Suzuki 2021), their one home: every HCFCN model config
# builds its neck and its SLIC loss from these two partial configs (`_base_.assignment_neck`,
# `_base_.slic_loss`), adding what depends on the backbone (the neck's in_channels/in_strides)
# and on the data set (lambda). The modules have no defaults for these values.
#   levels (4, 8): A(4) and A(8) are learned, the logits upsampled from stride 16 to 4 (the head
#                  reads the levels from the neck's output; the neck checks them)
#   embed_dims 48: K, the projection dimension of eq. 1
#   tau 0.07:      the softmax temperature of eq. 1
#   m 0:           the position weight of L_SLIC (eq. 4)
# lambda (loss_slic.loss_weight) is not here: it is a per-data-set choice, 0 (off) in
# _base_/models/hcfcn16_r34.py, set by the regularized configs (configs/hcfcn_r34_*.py: 0.075
# Cityscapes, 0.05 SUIM); SLICLoss's own default, 1.0, is mmseg's convention for every loss.
# Not a model: no `model` key, so it combines with any model base (ours or mmseg's).
assignment_neck = dict(type='AssignmentNeck', levels=(4, 8), embed_dims=48, tau=0.07)
slic_loss = dict(type='SLICLoss', m=0.0)
