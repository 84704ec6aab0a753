# Copyright (c) mmseg-spixreg contributors. All rights reserved.
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from .drawing import superpixel_panel


@HOOKS.register_module()
class SuperpixelVisualizationHook(Hook):
    """Draw hard superpixels, prediction and ground truth during validation / testing.

    For every ``interval``-th val/test iteration the first sample of the batch is rendered with
    :func:`superpixel_panel` (image with ``pred_superpixels`` boundaries | prediction | ground
    truth) and sent to the runner's visualizer with ``add_image``, i.e. to every configured
    vis backend (``LocalVisBackend`` PNGs under ``<work_dir>/<timestamp>/vis_data/vis_image``,
    ``TensorboardVisBackend`` images). With ``out_dir`` the panels are also written as PNG files
    there. Models without ``pred_superpixels`` (stock segmentors) get image | prediction | gt.

    Config::

        custom_hooks = [dict(type='SuperpixelVisualizationHook', interval=10)]

    Args:
        interval (int): Draw every ``interval`` iterations. Defaults to 50.
        max_per_split (int, optional): At most this many panels per val/test run. Defaults to
            None (no limit).
        out_dir (str, optional): Also write PNGs here. Defaults to None.
        backend_args (dict, optional): File backend arguments for reading images.
    """
    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 50,
                 max_per_split: Optional[int] = None,
                 out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self.max_per_split = max_per_split
        self.out_dir = out_dir
        self.backend_args = backend_args
        self._drawn = 0

    def before_val_epoch(self, runner: Runner) -> None:
        self._drawn = 0

    def before_test_epoch(self, runner: Runner) -> None:
        self._drawn = 0

    def _draw(self, runner: Runner, batch_idx: int, outputs: Sequence[SegDataSample],
              mode: str) -> None:
        if not outputs or not self.every_n_inner_iters(batch_idx, self.interval):
            return
        if self.max_per_split is not None and self._drawn >= self.max_per_split:
            return
        sample = outputs[0]
        image = mmcv.imfrombytes(
            get(sample.img_path, backend_args=self.backend_args), channel_order='rgb')
        # ValLoop / TestLoop give the visualizer the dataset's metainfo (classes, palette).
        meta = getattr(runner.visualizer, 'dataset_meta', None) or {}
        palette = meta.get('palette') or _default_palette()
        spix = sample.pred_superpixels.data.cpu().numpy()[0] \
            if 'pred_superpixels' in sample else None
        pred = sample.pred_sem_seg.data.cpu().numpy()[0] if 'pred_sem_seg' in sample else None
        gt = sample.gt_sem_seg.data.cpu().numpy()[0] if 'gt_sem_seg' in sample else None
        if pred is not None and pred.shape != image.shape[:2]:
            return  # e.g. a pipeline resizing the image: nothing sensible to overlay
        if gt is not None and gt.shape != image.shape[:2]:
            gt = None
        panel = superpixel_panel(image, spix, pred, gt, palette)
        name = f'{mode}_superpixels_{osp.splitext(osp.basename(sample.img_path))[0]}'
        runner.visualizer.add_image(name, panel, step=runner.iter)
        if self.out_dir is not None:
            path = osp.join(self.out_dir, f'{name}.png')
            mmcv.imwrite(panel[..., ::-1], path)
            print_log(f'superpixel visualisation written to {path}', logger='current')
        self._drawn += 1

    def _after_iter(self,
                    runner: Runner,
                    batch_idx: int,
                    data_batch: dict = None,
                    outputs: Optional[Sequence[SegDataSample]] = None,
                    mode: str = 'train') -> None:
        """What mmengine's ``after_val_iter`` / ``after_test_iter`` call: draw the batch's first
        sample in validation and testing (training outputs are losses, not predictions)."""
        if mode in ('val', 'test'):
            self._draw(runner, batch_idx, outputs, mode)


def _default_palette():
    state = np.random.RandomState(42)
    return state.randint(0, 255, size=(256, 3)).tolist()
