# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# The paper's fixed HCFCN settings as partial configs (`_base_.assignment_neck`,
# `_base_.slic_loss`, `_base_.hcfcn_head`): their one home is the installed package,
# mmseg_spixreg/configs/hcfcn.py (levels (4, 8), K = embed_dims 48, tau 0.07, m 0, the head's
# cross-entropy), so that configs outside this repository import the same values. Every HCFCN
# model config here builds its neck, SLIC loss and head from them, adding what depends on the
# backbone (in_channels / in_strides) and on the data set (lambda = loss_slic.loss_weight: 0 in
# _base_/models/hcfcn16_r34.py, 0.075 Cityscapes / 0.05 SUIM in configs/hcfcn_r34_*.py).
# Not a model: no `model` key, so it combines with any model base (ours or mmseg's).
# `_base_` first: mmengine reads a file whose first statement imports a package as a
# pure-Python (lazy-import) config, which cannot be a base of these text configs.
_base_ = []
from mmseg_spixreg.configs.hcfcn import assignment_neck, hcfcn_head, slic_loss  # noqa: E402,F401
