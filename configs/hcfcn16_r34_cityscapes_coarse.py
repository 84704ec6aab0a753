# HCFCN-16 without the SLIC regulariser (lambda = 0), ResNet34-DCN OS16,
# on Cityscapes (1024x512), coarse training labels (gtCoarse).
# Adam 5e-4, 512x512 crops + flip, 50 epochs (as iterations at batch 8), best-val checkpoint.
_base_ = [
    './_base_/models/hcfcn16_r34.py', './_base_/datasets/cityscapes_coarse_1024x512.py',
    './_base_/default_runtime.py', './_base_/schedules/adam_5e-4_cityscapes_50e.py'
]
