# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .missing_data import DataPresenceCheckMixin


@DATASETS.register_module()
class SUIMDataset(DataPresenceCheckMixin, BaseSegDataset):
    """SUIM underwater segmentation (Islam et al., IROS 2020), 8 classes.

    Expects the output of ``tools/dataset_converters/suim.py``: ``img_dir/{train_val,test}/*.jpg``,
    ``ann_dir/{train_val,test}/*.png`` with class ids 0..7 (the RGB code ``4R + 2G + B`` of the
    original masks) and split files ``splits/{train,val,test}.txt``. Coarse training labels from
    ``make_coarse_labels.py`` use 255 for the unlabelled part.

    Args:
        img_suffix (str): Image suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Label suffix. Defaults to '.png'.
        **kwargs: ``prepare_hint`` (:class:`DataPresenceCheckMixin`; default
            :attr:`PREPARE_HINT`, the converter command; the coarse config adds the coarse-label
            command) and the arguments of ``BaseSegDataset``.
    """
    METAINFO = dict(
        classes=('background waterbody', 'human divers', 'plants and sea-grass', 'wrecks and ruins',
                 'robots', 'reefs and invertebrates', 'fish and vertebrates',
                 'sea-floor and rocks'),
        # The original mask colours (RGB).
        palette=[[0, 0, 0], [0, 0, 255], [0, 255, 0], [0, 255, 255], [255, 0, 0], [255, 0, 255],
                 [255, 255, 0], [255, 255, 255]])
    PREPARE_HINT = 'python tools/dataset_converters/suim.py SUIM_ROOT data/suim'

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.png', **kwargs) -> None:
        # prepare_hint goes through **kwargs to DataPresenceCheckMixin
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
