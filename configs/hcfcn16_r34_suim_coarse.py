# HCFCN-16 without the SLIC regulariser (lambda = 0), ResNet34-DCN OS16,
# on SUIM (halved), simulated coarse training labels (N=12).
# Adam 5e-4, 512x512 crops + flip, 75 epochs (as iterations at batch 8), best-val checkpoint.
_base_ = [
    './_base_/models/hcfcn16_r34.py', './_base_/datasets/suim_coarse.py',
    './_base_/default_runtime.py', './_base_/schedules/adam_5e-4_suim_75e.py'
]
model = dict(decode_head=dict(num_classes=8))
