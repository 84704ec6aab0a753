# GPU CamVid campaign: regularized HCFCN-16 (lambda = 0.075, m = 0, the paper's Cityscapes
# setting), same data and schedule as the other two.
_base_ = ['./hcfcn16_r34_camvid_coarse_gpu.py']
model = dict(decode_head=dict(loss_slic=dict(loss_weight=0.075)))
