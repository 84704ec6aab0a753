# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The paper's fixed HCFCN settings (Suzuki 2021; de Jong and Holenderski 2025), their one home.

Partial configs (plain dicts) that a model config combines with what depends on the backbone
and the data set. The modules have no defaults for these values. They ship with the installed
package, so a config anywhere (not only in this repository) imports them; a text config that
starts with ``_base_ = [...]`` may import Python names (mmengine executes it)::

    _base_ = ['mmseg::_base_/models/pspnet_r50-d8.py']
    from mmseg_spixreg.configs.hcfcn import assignment_neck, hcfcn_head, slic_loss

    model = dict(
        type='SpixEncoderDecoder',
        data_preprocessor=dict(type='SpixSegDataPreProcessor'),
        neck=dict(assignment_neck, in_channels=[256, 512, 1024, 2048],
                  in_strides=[4, 8, 16, 16]),
        decode_head=dict(hcfcn_head, _delete_=True, in_channels=2048, in_index=3,
                         channels=512, num_classes=19, logits_head=dict(type='PSPHead'),
                         loss_slic=dict(slic_loss, loss_weight=0.075)))

``configs/_base_/models/hcfcn.py`` imports them the same way for the repository's configs.

* ``assignment_neck``: ``AssignmentNeck`` with levels (4, 8) (A(4) and A(8) are learned, the
  logits are upsampled from stride 16 to 4; the head reads the levels from the neck's output),
  ``embed_dims`` 48 (K, the projection dimension of eq. 1) and ``tau`` 0.07 (the softmax
  temperature of eq. 1). Add ``in_channels`` / ``in_strides`` of the backbone's outputs.
* ``slic_loss``: ``SLICLoss`` with m = 0 (the position weight of eq. 4). lambda
  (``loss_weight``) is a per-data-set choice (0.075 Cityscapes, 0.05 SUIM), stated by the
  configs; ``SLICLoss``'s own default is 1.0, mmseg's convention for every loss.
* ``hcfcn_head``: ``HCFCNHead`` with the cross-entropy as a mean over the labelled pixels
  (``avg_non_ignore``, as PyTorch's CE: the CE : lambda L_SLIC balance does not depend on the
  labelled fraction of coarse annotations) and L_SLIC off (lambda = 0, HCFCN-16); set
  ``loss_slic=dict(slic_loss, loss_weight=LAMBDA)`` for the regularized model. Add the
  backbone- and data-dependent head arguments; the coarse logits must be at stride 16 (twice
  the coarsest level), e.g. ``logits_head=dict(type='ASPPHead', ...)`` on a backbone at output
  stride 16.
"""
assignment_neck = dict(type='AssignmentNeck', levels=(4, 8), embed_dims=48, tau=0.07)
slic_loss = dict(type='SLICLoss', m=0.0)
hcfcn_head = dict(
    type='HCFCNHead',
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
    loss_slic=dict(slic_loss, loss_weight=0.0))
