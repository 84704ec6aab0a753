# The paper's full protocol at CPU scale, for `tools/run_experiment.py --finetune`: CamVid has no
# test split here, so the 101 val frames (sorted by name, one sequence) are split in time:
#   val  = the first 50 frames: model selection (best pixel accuracy), then joins fine-tuning on train+val
#          with its COARSE labels (finetune_val_dataset) and gives the stop rule's val loss;
#   test = the last 51 frames, FINE labels, never trained on or selected with.
# Regularized HCFCN-16 otherwise exactly as configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py.
_base_ = ['./hcfcn_r34_camvid_coarse_cpu.py']
val_frames = list(range(50))
test_frames = list(range(50, 101))
val_dataloader = dict(dataset=dict(indices=val_frames))
test_dataloader = dict(dataset=dict(indices=test_frames))
finetune_val_dataset = dict(indices=val_frames)
