# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Drawing hard superpixels: boundaries over the image, next to prediction and ground truth."""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np


# aligned by hand (yapf: disable): yapf 0.43 indents these parameters like the body (E125)
def colorize_labels(labels: np.ndarray,
                    palette: Sequence[Sequence[int]],
                    ignore_index: int = 255,
                    ignore_color: Tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:  # yapf: disable
    """Colour a class-id map with a palette.

    Args:
        labels (np.ndarray): Class ids, shape (H, W).
        palette (Sequence[Sequence[int]]): RGB colour per class id, length C.
        ignore_index (int): Label drawn with ``ignore_color``. Defaults to 255.
        ignore_color (tuple[int, int, int]): RGB colour of ignored / unknown labels.
            Defaults to black.

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), uint8.
    """
    lut = np.tile(np.asarray(ignore_color, np.uint8), (256, 1))
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
    lut[:len(palette)] = palette
    if ignore_index is not None and 0 <= ignore_index < 256:
        lut[ignore_index] = ignore_color
    labels = np.asarray(labels)
    inside = (labels >= 0) & (labels < 256)
    return lut[np.where(inside, labels,
                        ignore_index if ignore_index is not None else 255).astype(np.int64)]


def thin_boundary_map(superpixels: np.ndarray) -> np.ndarray:
    """One-pixel-wide superpixel boundaries: pixels whose right or lower neighbour lies in another
    superpixel (``boundary_map`` marks both sides, two pixels wide, as boundary recall counts).

    Args:
        superpixels (np.ndarray): Superpixel ids, shape (H, W).

    Returns:
        np.ndarray: Boolean map, shape (H, W).
    """
    edges = np.zeros(superpixels.shape, dtype=bool)
    edges[:, :-1] |= superpixels[:, 1:] != superpixels[:, :-1]
    edges[:-1, :] |= superpixels[1:, :] != superpixels[:-1, :]
    return edges


def draw_superpixel_boundaries(image: np.ndarray,
                               superpixels: np.ndarray,
                               color: Tuple[int, int, int] = (255, 255, 0),
                               dim: float = 0.6) -> np.ndarray:
    """Draw the boundaries of a hard-superpixel map over an image, legibly.

    The boundaries are one pixel wide (:func:`thin_boundary_map`) on the image darkened to ``dim``
    of its brightness: at 480x360 with 16x16-pixel superpixels (HCFCN-16 at full CamVid
    resolution) two-pixel lines cover a quarter of the image and a bright colour vanishes on sky
    and road markings; thin lines on the darkened image keep both the outlines and the scene
    readable.

    Args:
        image (np.ndarray): RGB image, shape (H, W, 3), uint8.
        superpixels (np.ndarray): Superpixel ids, shape (H, W) or (1, H, W).
        color (tuple[int, int, int]): RGB boundary colour. Defaults to yellow.
        dim (float): Brightness of the image under the boundaries, in (0, 1]. Defaults to 0.6.

    Returns:
        np.ndarray: The drawing, (H, W, 3), uint8 (``image`` is not modified).
    """
    superpixels = np.asarray(superpixels)
    if superpixels.ndim == 3:
        superpixels = superpixels[0]
    if superpixels.shape != image.shape[:2]:
        raise ValueError(f'superpixels {superpixels.shape} and image {image.shape[:2]} '
                         'sizes differ')
    if not 0 < dim <= 1:
        raise ValueError(f'dim must be in (0, 1], got {dim}')
    out = (image.astype(np.float32) * dim).round().astype(np.uint8)
    out[thin_boundary_map(superpixels)] = color
    return out


def _title(panel: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def superpixel_panel(image: np.ndarray,
                     superpixels: Optional[np.ndarray],
                     pred: Optional[np.ndarray] = None,
                     gt: Optional[np.ndarray] = None,
                     palette: Optional[Sequence[Sequence[int]]] = None,
                     ignore_index: int = 255,
                     titles: bool = True) -> np.ndarray:
    """Side by side: image + superpixel boundaries | prediction | ground truth.

    Args:
        image (np.ndarray): RGB image, shape (H, W, 3), uint8.
        superpixels (np.ndarray, optional): Hard superpixel ids, (H, W) or (1, H, W). None
            shows the plain image (models without superpixels).
        pred (np.ndarray, optional): Predicted class ids, (H, W). Defaults to None.
        gt (np.ndarray, optional): Ground-truth class ids, (H, W); ignored pixels black.
        palette (Sequence[Sequence[int]], optional): RGB per class; required with pred / gt.
        ignore_index (int): Ignored label. Defaults to 255.
        titles (bool): Add a caption above each tile. Defaults to True.

    Returns:
        np.ndarray: RGB panel, shape (H [+ 22], k * W, 3), uint8, k = number of tiles.
    """
    tiles = []
    if superpixels is not None:
        n = len(np.unique(superpixels))
        tiles.append((draw_superpixel_boundaries(image, superpixels), f'superpixels ({n})'))
    else:
        tiles.append((image, 'image'))
    for labels, name in ((pred, 'prediction'), (gt, 'ground truth')):
        if labels is None:
            continue
        if palette is None:
            raise ValueError('a palette is needed to draw prediction / ground truth')
        labels = np.asarray(labels)
        if labels.ndim == 3:
            labels = labels[0]
        if labels.shape != image.shape[:2]:
            raise ValueError(f'{name} {labels.shape} and image {image.shape[:2]} sizes differ')
        tiles.append((colorize_labels(labels, palette, ignore_index), name))
    if titles:
        tiles = [(_title(tile, name), name) for tile, name in tiles]
    return np.concatenate([tile for tile, _ in tiles], axis=1)
