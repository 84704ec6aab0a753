# Cityscapes at 1024x512, trained with the COARSE annotations (gtCoarse of the training cities),
# validated and tested with fine labels (same split as cityscapes_1024x512.py).
# mmseg's CityscapesDataset is enough: only the label suffix / folder of the training set change.
_base_ = './cityscapes_1024x512.py'
train_dataloader = dict(
    dataset=dict(
        seg_map_suffix='_gtCoarse_labelTrainIds.png',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtCoarse/train')))
# Fine-tuning on train+val (experiments/run_experiment.py --finetune) adds the val cities with their
# COARSE labels (merged over val_dataloader.dataset; also used for the stop rule's val loss).
finetune_val_dataset = dict(
    seg_map_suffix='_gtCoarse_labelTrainIds.png',
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtCoarse/train'))
