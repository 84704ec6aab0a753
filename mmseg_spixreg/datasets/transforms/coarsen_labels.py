# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Simulated coarse annotations from fine label maps: the generators and a pipeline step.

Two generators, selected by ``protocol``:

* ``'paper'`` (:func:`coarse_labels_paper`, the thesis text, what
  ``tools/dataset_converters/make_coarse_labels.py`` writes by default): each class region is
  eroded by N pixels in Euclidean distance (round erosion), each remaining component
  (contours ``RETR_CCOMP`` + ``CHAIN_APPROX_NONE``) simplified by Douglas-Peucker with a
  tolerance of N / 4 pixels, the polygons filled with the even-odd rule; a pixel already
  claimed keeps its class.
* ``'original'`` (:func:`coarse_labels_original`, the thesis's own code): for each class
  present, in increasing class id, the binary mask is eroded once with a (2N + 1) x (2N + 1)
  square kernel (``cv2.erode``, 25 x 25 for N = 12), contours found with ``RETR_TREE`` +
  ``CHAIN_APPROX_SIMPLE``, each simplified by Douglas-Peucker with epsilon = 0.005 x its
  closed arc length, all filled in one ``cv2.fillPoly`` call with the class id, written over
  the output (a later class overwrites an earlier one).

In both the image border does not erode and everything without a polygon is ``out_ignore``.
"""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

COARSE_PROTOCOLS = ('paper', 'original')


def _classes(fine: np.ndarray, ignore_values: Sequence[int]) -> list:
    """Class ids present in ``fine`` (increasing), void values excluded."""
    return [c for c in np.unique(fine) if c not in set(int(v) for v in ignore_values)]


def coarse_labels_paper(fine: np.ndarray,
                        erode: int = 12,
                        epsilon: Optional[float] = None,
                        ignore_values: Sequence[int] = (255, ),
                        out_ignore: int = 255) -> np.ndarray:
    """Coarse label map by the thesis text: round erosion, Douglas-Peucker, rest ignored.

    Args:
        fine (np.ndarray): Fine label map, shape (H, W), integer class ids.
        erode (int): Erosion distance N in pixels (>= 0): a pixel survives if no pixel with
            another label (void included) lies within Euclidean distance N. Defaults to 12.
        epsilon (float, optional): Douglas-Peucker tolerance in pixels; None for ``N / 4``
            (0 keeps the eroded contour exactly). Defaults to None.
        ignore_values (Sequence[int]): Input labels that are void. Defaults to (255, ).
        out_ignore (int): Label written where there is no polygon. Defaults to 255.

    Returns:
        np.ndarray: Coarse label map, shape (H, W), dtype of ``fine``.
    """
    if erode < 0:
        raise ValueError(f'erode must be >= 0, got {erode}')
    if epsilon is None:
        epsilon = erode / 4.0
    coarse = np.full(fine.shape, out_ignore, dtype=fine.dtype)
    for c in _classes(fine, ignore_values):
        region = (fine == c).astype(np.uint8)
        if erode > 0:
            # Distance of each region pixel to the nearest pixel outside the region; pixels
            # beyond the image are not "outside" (no erosion from the border).
            dist = cv2.distanceTransform(region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            core = (dist > erode).astype(np.uint8)
        else:
            core = region
        if not core.any():
            continue
        contours, _ = cv2.findContours(core, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        polygons = [
            cv2.approxPolyDP(cnt, epsilon, True) if epsilon > 0 else cnt for cnt in contours
        ]
        polygons = [p for p in polygons if len(p) >= 3]
        if not polygons:
            continue
        mask = np.zeros(fine.shape, np.uint8)
        # Drawing all contours (outer boundaries and holes) in one call fills with the
        # even-odd rule, so holes (e.g. sky seen through a building) stay unfilled.
        cv2.drawContours(mask, polygons, -1, 1, thickness=cv2.FILLED)
        # Regions of different classes are >= 2N apart, so polygons only collide where the
        # simplification cut corners; the first class drawn keeps the pixel.
        coarse[(mask == 1) & (coarse == out_ignore)] = c
    return coarse


def square_erosion(mask: np.ndarray, erode: int) -> np.ndarray:
    """One ``cv2.erode`` of a binary mask with a (2N + 1) x (2N + 1) square kernel.

    A pixel survives if its whole square window (Chebyshev distance <= N) lies in the mask;
    outside the image does not erode (OpenCV's default border).

    Args:
        mask (np.ndarray): (H, W) uint8 0/1.
        erode (int): N (>= 0).

    Returns:
        np.ndarray: (H, W) uint8 0/1.
    """
    if erode == 0:
        return mask
    return cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))


def coarse_labels_original(fine: np.ndarray,
                           erode: int = 12,
                           ignore_values: Sequence[int] = (255, ),
                           out_ignore: int = 255) -> np.ndarray:
    """Coarse label map as the thesis's own code makes it (see the module docstring).

    Args:
        fine (np.ndarray): Fine label map, shape (H, W), integer class ids.
        erode (int): N: the square kernel is (2N + 1) x (2N + 1) (the original's 25 x 25 is
            N = 12). Defaults to 12.
        ignore_values (Sequence[int]): Input labels that are void (no polygon; they erode
            their neighbours). Defaults to (255, ).
        out_ignore (int): Label of the pixels without polygon. Defaults to 255.

    Returns:
        np.ndarray: Coarse label map, shape (H, W), dtype of ``fine``.
    """
    if erode < 0:
        raise ValueError(f'erode must be >= 0, got {erode}')
    coarse = np.full(fine.shape, out_ignore, dtype=fine.dtype)
    for c in _classes(fine, ignore_values):
        core = square_erosion((fine == c).astype(np.uint8), erode)
        contours, _ = cv2.findContours(core, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        polygons = [
            cv2.approxPolyDP(cnt, 0.005 * cv2.arcLength(cnt, True), True) for cnt in contours
        ]
        # one call for all polygons, straight onto the output: a later class overwrites
        canvas = coarse.astype(np.int32) if coarse.dtype not in (np.uint8, np.int32) \
            else coarse
        cv2.fillPoly(canvas, polygons, int(c))
        coarse = canvas.astype(fine.dtype, copy=False)
    return coarse


def coarsen_labels(fine: np.ndarray,
                   protocol: str = 'paper',
                   erode: int = 12,
                   epsilon: Optional[float] = None,
                   ignore_values: Sequence[int] = (255, ),
                   out_ignore: int = 255) -> np.ndarray:
    """Coarse labels by ``protocol`` ('paper': :func:`coarse_labels_paper`, 'original':
    :func:`coarse_labels_original`, which has no ``epsilon``)."""
    if protocol not in COARSE_PROTOCOLS:
        raise ValueError(f'coarse-label protocol must be one of {COARSE_PROTOCOLS}, '
                         f'got {protocol!r}')
    if protocol == 'original':
        if epsilon is not None:
            raise ValueError("the 'original' coarse labels take no epsilon (it is 0.005 x "
                             'each contour\'s arc length)')
        return coarse_labels_original(fine, erode, ignore_values, out_ignore)
    return coarse_labels_paper(fine, erode, epsilon, ignore_values, out_ignore)


@TRANSFORMS.register_module()
class CoarsenLabels(BaseTransform):
    """Replace the loaded fine label map by simulated coarse annotations, on the fly.

    The thesis's own code coarsens after the random crop and flip: put this step after
    ``RandomCrop`` / ``RandomFlip`` (and after ``CheckSegLabels``, which sees the fine ids).
    It sees the ids after the data set's ``label_map`` (CamVid's void 11 is already 255).

    Required keys: ``gt_seg_map``. Modified keys: ``gt_seg_map``.

    Args:
        protocol (str): 'paper' (the thesis text; the labels
            ``tools/dataset_converters/make_coarse_labels.py`` writes) or 'original' (the
            thesis's own code). Default: 'paper'.
        erode (int): N in pixels. Default: 12.
        epsilon (float, optional): Douglas-Peucker tolerance of the 'paper' protocol; None:
            N / 4. Default: None.
        ignore_index (int): void label of the input and label of the output's unlabelled
            pixels. Default: 255.
    """

    def __init__(self,
                 protocol: str = 'paper',
                 erode: int = 12,
                 epsilon: Optional[float] = None,
                 ignore_index: int = 255) -> None:
        if protocol not in COARSE_PROTOCOLS:
            raise ValueError(f'CoarsenLabels: protocol must be one of {COARSE_PROTOCOLS}, '
                             f'got {protocol!r}')
        if isinstance(erode, bool) or not isinstance(erode, int) or erode < 0:
            raise ValueError(f'CoarsenLabels: erode must be an int >= 0, got {erode!r}')
        if protocol == 'original' and epsilon is not None:
            raise ValueError("CoarsenLabels: protocol='original' takes no epsilon")
        self.protocol = protocol
        self.erode = erode
        self.epsilon = epsilon
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Args:
            results (dict): with ``gt_seg_map`` (H, W).

        Returns:
            dict: ``results`` with the coarse ``gt_seg_map``.
        """
        if 'gt_seg_map' not in results:
            raise ValueError('CoarsenLabels needs `gt_seg_map`: put it after LoadSegAnnotations '
                             f"(sample {results.get('img_path')})")
        results['gt_seg_map'] = coarsen_labels(results['gt_seg_map'], self.protocol, self.erode,
                                               self.epsilon, (self.ignore_index, ),
                                               self.ignore_index)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(protocol={self.protocol!r}, erode={self.erode}, '
                f'epsilon={self.epsilon}, ignore_index={self.ignore_index})')
