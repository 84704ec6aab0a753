# CPU-scale CamVid: the HCFCN neck and head in mmseg's stock PSPNet (ResNetV1c-18, output stride
# 16) with the SLIC regulariser, lambda = 0.075 and m = 0 (the paper's Cityscapes setting, not
# tuned here); everything else as ./hcfcn16-pspnet_r18-d16_camvid_coarse_cpu.py.
_base_ = ['./hcfcn16-pspnet_r18-d16_camvid_coarse_cpu.py']
from mmseg_spixreg.configs.hcfcn import slic_loss  # noqa: E402

model = dict(decode_head=dict(loss_slic=dict(slic_loss, loss_weight=0.075)))
