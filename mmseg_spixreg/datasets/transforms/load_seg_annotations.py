# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""mmseg's ``LoadAnnotations`` with errors that name the label file."""
import os.path as osp

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """Load the semantic label map exactly as mmseg's ``LoadAnnotations``, failing clearly.

    mmseg's loader decodes the label bytes without naming the file in its errors: a truncated or
    non-image label file fails deep in the data loader with
    ``PIL.UnidentifiedImageError: cannot identify image file <_io.BytesIO object at 0x...>``, and
    an RGB (colour-coded) label map is silently kept as an ``HxWx3`` array. This subclass raises
    a ``ValueError`` naming the file in both cases; everything else (arguments, ``label_map``,
    ``reduce_zero_label``, results keys) is inherited unchanged, so it is a drop-in replacement
    for ``dict(type='LoadAnnotations')``. A missing file still raises mmengine's
    ``FileNotFoundError`` with the path.

    A sample without ``seg_map_path`` (a bare image, as ``mmseg.apis.inference_model`` and
    ``MMSegInferencer`` feed the test pipeline) passes through unchanged: mmseg's inference code
    removes only the step whose type is exactly ``LoadAnnotations`` from the test pipeline, so
    this step must itself do nothing when there is no label map to load. Samples of a data set
    always carry ``seg_map_path`` (``BaseSegDataset``), so training and evaluation still load
    (and a missing label file still fails).

    Required keys: ``seg_map_path`` (optional, see above), ``reduce_zero_label``,
    ``seg_fields``.
    Added keys: ``gt_seg_map`` (np.uint8, HxW), only when ``seg_map_path`` is given.
    """

    def transform(self, results: dict) -> dict:
        """Args:
            results (dict): the pipeline's result dict.

        Returns:
            dict: ``results`` with ``gt_seg_map`` added, or unchanged when the sample has no
            ``seg_map_path`` (inference on an image without labels).
        """
        if results.get('seg_map_path') is None:
            return results
        return super().transform(results)

    def _check_no_ids_above_255(self, path: str) -> None:
        """A 16-bit PNG label map may hold ids above 255, which mmseg's ``astype(np.uint8)``
        wraps silently (256 -> 0, 257 -> 1): raise naming them. Only 16-bit PNGs (bit depth in
        the header) are decoded here; 8-bit maps cannot hold such ids."""
        if osp.isfile(path):
            with open(path, 'rb') as f:
                head = f.read(25)
        else:
            head = fileio.get(path, backend_args=self.backend_args)[:25]
        if len(head) < 25 or head[:8] != b'\x89PNG\r\n\x1a\n' or head[24] != 16:
            return
        seg = mmcv.imfrombytes(
            fileio.get(path, backend_args=self.backend_args),
            flag='unchanged',
            backend=self.imdecode_backend)
        above = np.unique(seg[seg > 255])
        if above.size:
            shown = ', '.join(str(int(v))
                              for v in above[:10]) + (', ...' if above.size > 10 else '')
            raise ValueError(
                f'{path}: 16-bit label map with ids above 255 ({shown}); mmseg stores label '
                'maps as uint8, which would turn them into other ids silently (256 -> 0). '
                'Convert the labels to train ids 0..254 with 255 as ignore (see '
                'tools/dataset_converters/)')

    def _load_seg_map(self, results: dict) -> None:
        """Args:
            results (dict): the pipeline's result dict.

        Raises:
            ValueError: the label file cannot be decoded as an image, or it does not decode to
                a single-channel HxW map.
        """
        path = results.get('seg_map_path', '<unknown label file>')
        self._check_no_ids_above_255(path)
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise ValueError(f'{path}: cannot decode the label map ({type(e).__name__}: {e}); '
                             'the file is corrupt or not an image') from e
        seg = np.asarray(results['gt_seg_map'])
        if seg.ndim != 2:
            raise ValueError(
                f'{path}: a label map must have one channel of class ids (HxW), got shape '
                f'{seg.shape}; convert colour-coded labels to ids first (see '
                'tools/dataset_converters/)')
