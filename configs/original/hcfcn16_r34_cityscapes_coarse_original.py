# HCFCN-16 (no SLIC regulariser, lambda = 0) on Cityscapes coarse labels (gtCoarse) with every
# option of the thesis's own code (configs/_base_/original_code.py; configs/original/README.md):
# the regularized model's original configuration next to this file with lambda set to 0.
_base_ = ['./hcfcn_r34_cityscapes_coarse_original.py']
model = dict(decode_head=dict(loss_slic=dict(loss_weight=0.0)))
