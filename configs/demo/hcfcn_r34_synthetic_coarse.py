# `make demo`: regularized HCFCN-16 (HCFCN-16 + SLIC, lambda = 0.075, m = 0) on the generated
# data set, coarse training labels, the same short CPU schedule as its unregularized twin.
_base_ = ['./hcfcn16_r34_synthetic_coarse.py']
model = dict(decode_head=dict(loss_slic=dict(loss_weight=0.075)))
