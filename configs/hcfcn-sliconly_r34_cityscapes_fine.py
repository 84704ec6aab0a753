# HCFCN-16 trained on L_SLIC ALONE (no cross-entropy, labels unused: paper Table IV setting):
# only the superpixels are learned; judge them by ASA (eq. 8: the labels reconstructed through
# the learned superpixels, so best checkpoint by ASA) / boundary recall, not mIoU (the
# classifier gets no gradient, hence find_unused_parameters for distributed training).
_base_ = ['./hcfcn_r34_cityscapes_fine.py']
model = dict(decode_head=dict(supervised=False))
default_hooks = dict(checkpoint=dict(save_best='ASA'))
find_unused_parameters = True
