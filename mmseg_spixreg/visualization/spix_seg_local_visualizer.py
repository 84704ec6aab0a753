# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""mmseg's SegLocalVisualizer plus the hard-superpixel boundaries of HCFCN models."""
from typing import Dict, List, Optional, Sequence

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from .drawing import draw_superpixel_boundaries


@VISUALIZERS.register_module()
class SpixSegLocalVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that also draws ``pred_superpixels`` next to the prediction.

    For a data sample with ``pred_superpixels`` (HCFCN models, ``SpixEncoderDecoder``) the drawn
    image is mmseg's usual one with one more tile on the right::

        [ground-truth overlay |] prediction overlay | image + hard-superpixel boundaries

    Samples without ``pred_superpixels`` (stock segmentors) are drawn exactly as by mmseg's
    ``SegLocalVisualizer``. Everything that uses the runner's / inferencer's visualizer picks it
    up from the config: ``SegVisualizationHook`` (``tools/test.py --show-dir DIR`` / ``--show``),
    ``MMSegInferencer`` (``out_dir``, ``show``, ``return_vis``)::

        visualizer = dict(type='SpixSegLocalVisualizer',
                          vis_backends=[dict(type='LocalVisBackend')], name='visualizer')

    Boundary pixels are those with a 4-neighbour in another superpixel (as in boundary recall).

    Args:
        name, image, vis_backends, save_dir, classes, palette, dataset_name, alpha: as in
            :class:`mmseg.visualization.SegLocalVisualizer` (``alpha``: overlay opacity), with
            ``classes`` / ``palette`` in the right order and without mmseg's Cityscapes
            default: given none of classes, palette and dataset_name, ``dataset_meta`` stays
            empty until the runner / ``MMSegInferencer`` / the caller sets it (the data set's
            ``metainfo``, a checkpoint's ``dataset_meta``), and drawing a segmentation without
            it raises a ``ValueError``.
        draw_superpixels (bool): Add the superpixel tile when the sample has
            ``pred_superpixels``. Defaults to True.
        superpixel_color (Sequence[int]): RGB colour of the boundaries. Defaults to yellow
            (255, 255, 0).
        **kwargs: Further arguments of :class:`mmengine.visualization.Visualizer`.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[Dict]] = None,
                 save_dir: Optional[str] = None,
                 classes: Optional[List] = None,
                 palette: Optional[List] = None,
                 dataset_name: Optional[str] = None,
                 alpha: float = 0.8,
                 draw_superpixels: bool = True,
                 superpixel_color: Sequence[int] = (255, 255, 0),
                 **kwargs) -> None:
        color = tuple(superpixel_color)
        if len(color) != 3 or not all(
                isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color):
            raise ValueError('SpixSegLocalVisualizer: superpixel_color must be three ints in '
                             f'0..255 (RGB), got {superpixel_color!r}')
        super().__init__(name, image, vis_backends, save_dir, classes, palette, dataset_name, alpha,
                         **kwargs)
        if classes is None and palette is None and dataset_name is None:
            # no Cityscapes default (mmseg's): the runner, MMSegInferencer or the caller set the
            # data set's classes and palette; drawing without them is an error
            self.dataset_meta = {}
        else:
            # mmseg 1.2.2's constructor passes (palette, classes) to set_dataset_meta(classes,
            # palette, ...), i.e. swapped: set them again in the right order.
            self.set_dataset_meta(classes, palette, dataset_name)
        self.draw_superpixels = draw_superpixels
        self.superpixel_color = tuple(int(c) for c in color)

    def _draw_superpixels(self, image: np.ndarray, superpixels: PixelData) -> np.ndarray:
        """Draw the boundaries of the hard superpixels over the image.

        Args:
            image (np.ndarray): RGB image, shape (H, W, 3), uint8.
            superpixels (PixelData): ``data`` of shape (1, H, W), superpixel ids (int).

        Returns:
            np.ndarray: RGB image with the boundaries drawn, (H, W, 3), uint8.

        Raises:
            ValueError: the superpixels are not at the image's size.
        """
        spix = superpixels.cpu().numpy().data
        spix = spix[0] if spix.ndim == 3 else spix
        if spix.shape != image.shape[:2]:
            raise ValueError(
                f'pred_superpixels are {spix.shape[0]}x{spix.shape[1]} but the image to draw on '
                f'is {image.shape[0]}x{image.shape[1]} (height x width); draw on the image the '
                'model was given (predictions are at its original size)')
        return draw_superpixel_boundaries(image, spix, self.superpixel_color)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw a data sample (mmseg's tiles + the superpixel tile) and save / show it.

        Args:
            name (str): Image identifier (window title / backend key).
            image (np.ndarray): RGB image, shape (H, W, 3), uint8.
            data_sample (SegDataSample, optional): ``gt_sem_seg`` / ``pred_sem_seg`` /
                ``pred_superpixels``, each ``PixelData`` with data (1, H, W).
            draw_gt (bool): Draw the ground truth. Defaults to True.
            draw_pred (bool): Draw the prediction and the superpixels. Defaults to True.
            show (bool): Display the drawn image. Defaults to False.
            wait_time (float): Display time (s). Defaults to 0.
            out_file (str, optional): Write the drawn image here instead of to the vis
                backends. Defaults to None.
            step (int): Global step for the vis backends. Defaults to 0.
            with_labels (bool, optional): Write class names into the overlays. Defaults to
                True.
        """
        classes = self.dataset_meta.get('classes', None)
        palette = self.dataset_meta.get('palette', None)
        keys = [
            key for key, wanted in (('gt_sem_seg', draw_gt), ('pred_sem_seg', draw_pred))
            if wanted and data_sample is not None and key in data_sample
        ]
        if keys and (classes is None or palette is None):
            raise ValueError(
                f'SpixSegLocalVisualizer: no class names / palette to draw {keys[0]} with: pass '
                "classes= and palette= (e.g. model.dataset_meta['classes'] / ['palette']) or set "
                'visualizer.dataset_meta = model.dataset_meta')
        if not (self.draw_superpixels and draw_pred and data_sample is not None
                and 'pred_superpixels' in data_sample):
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred, show,
                                          wait_time, out_file, step, with_labels)
        # first: its size check names the problem (mmseg's overlay fails with an IndexError)
        spix_tile = self._draw_superpixels(image, data_sample.pred_superpixels)
        tiles = []
        for key, wanted in (('gt_sem_seg', draw_gt), ('pred_sem_seg', True)):
            if wanted and key in data_sample:
                tiles.append(
                    self._draw_sem_seg(image, data_sample.get(key), classes, palette, with_labels))
        tiles.append(spix_tile)
        drawn_img = np.concatenate(tiles, axis=1)
        self.set_image(drawn_img)
        if show:
            self.show(drawn_img, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn_img), out_file)
        else:
            self.add_image(name, drawn_img, step)
