# Regularized HCFCN-16 (HCFCN-16 + SLIC regulariser, lambda = 0.05, m = 0), ResNet34-DCN OS16,
# on SUIM (halved), fine labels.
# `python tools/train.py configs/hcfcn_r34_suim_fine.py`
_base_ = ['./hcfcn16_r34_suim_fine.py']
model = dict(decode_head=dict(loss_slic=dict(loss_weight=0.05)))
