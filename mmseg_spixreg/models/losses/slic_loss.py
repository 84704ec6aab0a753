# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SLIC regulariser (de Jong et al., eq. 4) and the exact sRGB -> CIELAB (D65) conversion."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...ops import superpixel_reconstruct

# sRGB (IEC 61966-2-1) linear RGB -> XYZ matrix for the D65 white point, and that white point
# (the matrix' row sums), as in B. Lindbloom's tables.
_RGB2XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
            (0.0193339, 0.1191920, 0.9503041))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
# CIE constants in their exact rational form
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """Exact sRGB -> CIELAB conversion (D65 white, 2 degree observer).

    sRGB companding is inverted (``c / 12.92`` below 0.04045, ``((c + 0.055) / 1.055) ** 2.4``
    above), linear RGB goes to XYZ with the sRGB/D65 matrix, XYZ is divided by the D65 white and
    ``f(t) = t ** (1/3)`` above the CIE epsilon 216/24389 else ``(kappa * t + 16) / 116``
    (kappa = 24389/27); ``L = 116 f(Y) - 16``, ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))``.
    Close to ``cv2.cvtColor(img, cv2.COLOR_RGB2Lab)`` on float32 images in [0, 1], not equal:
    OpenCV's float path approximates the sRGB curve and the cube root (tables and splines) and
    rounds its constants, so the two differ by up to ~0.5 Lab units (20 CamVid val frames: at
    most 0.19 / 0.46 / 0.31 in L / a / b, 0.05-0.07 on average;
    ``tests/test_models/test_losses/test_slic_loss.py``).

    Args:
        rgb (Tensor): (..., 3, H, W) RGB in [0, 1] (channel dim third from last).

    Returns:
        Tensor: (..., 3, H, W) L in [0, 100], a and b roughly in [-128, 127]; same dtype as input
        (computed in float32 at least).
    """
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise ValueError(f'rgb_to_lab expects (..., 3, H, W), got {tuple(rgb.shape)}')
    dtype = rgb.dtype
    c = rgb.float().clamp(0.0, 1.0)
    lin = torch.where(c > 0.04045, ((c + 0.055) / 1.055).pow(2.4), c / 12.92)
    m = lin.new_tensor(_RGB2XYZ)
    xyz = torch.einsum('ij,...jhw->...ihw', m, lin)
    xyz = xyz / lin.new_tensor(_WHITE_D65).view(3, 1, 1)
    f = torch.where(xyz > _EPSILON,
                    xyz.clamp(min=_EPSILON).pow(1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)
    return lab.to(dtype) if dtype.is_floating_point else lab


def slic_reconstruction_error(features: Tensor,
                              positions: Optional[Tensor],
                              assignments: Sequence[Tensor],
                              stride: int,
                              m: float,
                              valid: Tensor,
                              eps: float = 1e-6) -> Tensor:
    """Eq. 4: mean over valid pixels of ``||x_p - q(x, A)_p||_2 + m ||P_p - q(P, A)_p||_2``.

    The hierarchy is ``A = [A(1), ..., A(stride / 2), A(s0), A(2 s0), ...]``: the levels below
    the finest learned one are the fixed box assignments (each pixel to its own cell), so
    superpixel downsampling through them is the mean over each ``stride x stride`` cell and
    upsampling is nearest, i.e. ``q(x, A) = nearest_up(q(cellmean(x), learned A))``. The
    reconstruction is computed on the cell grid and compared with every full-resolution pixel
    of its cell (the norms are per full-resolution pixel, as in eq. 4).

    Args:
        features (Tensor): (B, C, H, W) per-pixel colour x (CIELAB) at full resolution.
        positions (Tensor | None): (B, 2, H, W) pixel coordinates P = (x, y) in pixels (None
            when ``m == 0``).
        assignments (Sequence[Tensor]): learned [A(s0) (B, 9, He, We), A(2 s0), ...], finest
            first; (He, We) covers the cell grid (ceil(H / stride), ceil(W / stride)), possibly
            padded (bottom/right) to chain the levels.
        stride (int): s0, the fine stride of the finest learned level (cell size).
        m (float): weight of the position term.
        valid (Tensor): (B, H, W) bool mask of the pixels that count (not padding).
        eps (float): added under the square roots so the gradient at an exact fit is finite.

    Returns:
        Tensor: scalar, the mean over the valid pixels of the batch (not multiplied by lambda).
    """
    B, _, H, W = features.shape
    h, w = -(-H // stride), -(-W // stride)
    x = features if positions is None or m == 0 else torch.cat((features, positions), dim=1)
    c = features.shape[1]
    with torch.no_grad():
        # box A(1) .. A(stride/2): the mean over each cell (partial border cells: the pixels
        # that exist)
        cells = F.avg_pool2d(x, stride, ceil_mode=True) if stride > 1 else x
        he, we = assignments[0].shape[-2:]
        if (he, we) != (h, w):
            cells = F.pad(cells, (0, we - w, 0, he - h), mode='replicate')
    q = superpixel_reconstruct(cells, list(assignments))[..., :h, :w]
    # nearest upsampling through the box levels, as a broadcast over the pixels of each cell
    if (H, W) != (h * stride, w * stride):
        x = F.pad(x, (0, w * stride - W, 0, h * stride - H))
        valid = F.pad(valid, (0, w * stride - W, 0, h * stride - H))
    diff = x.reshape(B, x.shape[1], h, stride, w, stride) - q[:, :, :, None, :, None]
    sq = diff.pow(2)
    err = (sq[:, :c].sum(dim=1) + eps).sqrt()
    if x.shape[1] > c:
        err = err + m * (sq[:, c:].sum(dim=1) + eps).sqrt()
    weight = valid.reshape(B, h, stride, w, stride).to(err.dtype)
    return (err * weight).sum() / weight.sum().clamp(min=1.0)


def resize_to_grid(image: Tensor, size: Sequence[int]) -> Tensor:
    """The image on the finest assignment grid, as the original code feeds L_SLIC.

    ``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing: each grid
    value is the bilinear sample at the cell centre (for a 4x4 cell the mean of its central 2x2
    pixels), not the cell mean that eq. 4's box A(1), A(2) give.

    Args:
        image (Tensor): (B, C, H, W).
        size (Sequence[int]): (h, w) of the grid.

    Returns:
        Tensor: (B, C, h, w).
    """
    return F.interpolate(
        image, size=(int(size[0]), int(size[1])), mode='bilinear', align_corners=False)


def slic_reconstruction_error_original(features: Tensor, positions: Optional[Tensor],
                                       assignments: Sequence[Tensor], largest_stride: int, m: float,
                                       valid: Tensor) -> Tensor:
    """L_SLIC as the original code computes it, on the finest assignment grid (stride 4).

    ``mean_g ||x_g - q(x, [A4, A8])_g||_2 + m * mean_g ||P_g - q(P, [A4, A8])_g||_2 / S^2`` over
    the grid cells g of the batch, with x the grid's CIELAB colour (:func:`resize_to_grid`
    before the conversion), P the (column, row) indices of the grid and S the largest assignment
    stride (8 for [A4, A8]). Unsquared norms without epsilon (as ``torch.norm``).

    Args:
        features (Tensor): (B, C, h, w) colour x on the grid.
        positions (Tensor | None): (B, 2, h, w) grid coordinates (None when ``m == 0``).
        assignments (Sequence[Tensor]): [A4 (B, 9, He, We), A8, ...], (He, We) >= (h, w)
            (the neck may pad to chain the levels; the grid is replicate-padded to it).
        largest_stride (int): S, the fine stride of the coarsest learned level (8 for
            [A4, A8]).
        m (float): weight of the position term.
        valid (Tensor): (B, h, w) bool mask of the grid cells that count.

    Returns:
        Tensor: scalar (not multiplied by lambda).
    """
    h, w = features.shape[-2:]
    x = features if positions is None or m == 0 else torch.cat((features, positions), dim=1)
    c = features.shape[1]
    he, we = assignments[0].shape[-2:]
    padded = x if (he, we) == (h, w) else F.pad(x, (0, we - w, 0, he - h), mode='replicate')
    q = superpixel_reconstruct(padded, list(assignments))[..., :h, :w]
    diff = x - q
    err = torch.linalg.vector_norm(diff[:, :c], dim=1)
    if x.shape[1] > c:
        err = err + m * torch.linalg.vector_norm(diff[:, c:], dim=1) / largest_stride**2
    weight = valid.to(err.dtype)
    return (err * weight).sum() / weight.sum().clamp(min=1.0)


def pixel_positions(batch: int, height: int, width: int, device=None) -> Tensor:
    """P of eq. 4: the (x, y) pixel coordinates of every pixel.

    Returns:
        Tensor: (batch, 2, height, width) float32, channel 0 the column x, channel 1 the row y.
    """
    ys = torch.arange(height, dtype=torch.float32, device=device)
    xs = torch.arange(width, dtype=torch.float32, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((gx, gy))[None].expand(batch, -1, -1, -1)


@MODELS.register_module()
class SLICLoss(nn.Module):
    """The SLIC regulariser L_SLIC (eq. 4), returned as ``loss_weight * L_SLIC``.

    ``L_SLIC = mean_p ||x_p - q(x, A)_p||_2 + m ||P_p - q(P, A)_p||_2`` over the valid
    full-resolution pixels p of the batch, with x the CIELAB colour of pixel p, P its pixel
    coordinates (x, y) and q(., A) the superpixel reconstruction (eq. 3) through the whole
    hierarchy ``A = [A(1), A(2), A(4), A(8)]``.

    Levels: only A(4) and A(8) are learned; A(1) and A(2) are the fixed box assignments of each
    pixel to its own cell (the stem has no assignment). Then
    ``q(x, [A1, A2, A4, A8]) = nearest_up4(q(avg_pool4(x), [A4, A8]))``: the reconstruction is
    computed on the stride-4 grid, broadcast to full resolution, and the Euclidean norms are
    taken per full-resolution pixel (one full-resolution norm of 3 or 5 channels; no
    full-resolution q). The norm is not squared, so the within-cell colour spread does depend on
    the reconstruction and is part of the loss, exactly as in eq. 4.

    Normalisation (documented deviation): the paper writes a sum over pixels; this is the mean
    over the valid (non-padding) full-resolution pixels of the batch, so lambda does not depend
    on the crop size or the batch size. CIELAB in its natural units (L in [0, 100]); P in
    pixels, so ``m`` is the weight of one pixel of displacement against one Lab unit.
    Padding pixels (``valid`` False) are excluded from the mean; in the reconstruction, cells of
    the assignment grid beyond the image (when the neck padded it to chain the levels) repeat
    the last image cells.

    Args:
        loss_weight (float): lambda (>= 0), the weight of L_SLIC against the cross-entropy.
            Default: 1.0, mmseg's convention for every loss: lambda is a per-dataset choice
            (the paper's 0.075 for Cityscapes, 0.05 for SUIM) that the configs state
            (``configs/hcfcn_r34_*.py``; the model base ``configs/_base_/models/hcfcn16_r34.py``
            has lambda = 0, i.e. HCFCN-16 without the regulariser).
        m (float): weight of the position term (>= 0); keyword-only and required: the paper's
            m = 0 is set in the model base config (``configs/_base_/models/hcfcn.py``).
        eps (float): numerical epsilon under the norms. Default: 1e-6.
        loss_name (str): key in the loss dict. Default: 'loss_slic'.
        protocol (str): 'paper' (eq. 4 as above) or 'original': as the thesis's own code
            (:func:`slic_reconstruction_error_original`): the RGB image bilinearly resized to
            the finest assignment grid, then CIELAB, positions in grid indices, the mean over
            the grid cells, the position term divided by the largest stride squared; no
            epsilon. Default: 'paper'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 *,
                 m: float,
                 eps: float = 1e-6,
                 loss_name: str = 'loss_slic',
                 protocol: str = 'paper') -> None:
        super().__init__()
        if protocol not in ('paper', 'original'):
            raise ValueError(f"SLICLoss: protocol must be 'paper' or 'original', got "
                             f'{protocol!r}')
        self.protocol = protocol
        # lambda, m >= 0 and eps > 0, each a finite float32 number (the loss runs in float32:
        # 1e39 is inf there, a NaN or negative eps makes the square roots NaN)
        float32_max = torch.finfo(torch.float32).max
        for name, value, low_ok in (('loss_weight (lambda)', loss_weight, True), ('m', m, True),
                                    ('eps', eps, False)):
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            in_range = is_number and 0 <= value <= float32_max and (value > 0 or low_ok)
            if not in_range:
                raise ValueError(f'SLICLoss: {name} must be {">=" if low_ok else ">"} 0, got '
                                 f'{value!r} (a finite float32 number)')
        self.loss_weight = float(loss_weight)
        self.m = float(m)
        self.eps = float(eps)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self,
                image: Tensor,
                assignments: List[Tensor],
                fine_size: Sequence[int],
                valid: Optional[Tensor] = None,
                stride: Optional[int] = None) -> Tensor:
        """Args:
            image (Tensor): (B, 3, H, W) un-normalised RGB in [0, 255].
            assignments (list[Tensor]): [A(4), A(8), ...] finest first, (B, 9, He, We) each.
            fine_size (Sequence[int]): true (h, w) of the finest learned grid (stride s =
                H / h rounded, with ceil(H / s) = h).
            valid (Tensor, optional): (B, H, W) bool/float mask of real (non-padding) pixels;
                None: all pixels count.
            stride (int, optional): s, the fine stride of the finest level (the neck's
                ``levels[0]``; ``HCFCNHead`` passes it). None: ``H / h`` rounded, which is
                ambiguous for small images (a 5-pixel crop on a 2-cell grid is stride 3 or 4).

        Returns:
            Tensor: scalar ``loss_weight * L_SLIC``.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f'SLICLoss: image must be (B, 3, H, W) RGB, got '
                             f'{tuple(image.shape)}')
        h, w = int(fine_size[0]), int(fine_size[1])
        B, _, H, W = image.shape
        if stride is None:
            stride = int(round(H / h)) if h > 0 else 0
        if stride < 1 or (H + stride - 1) // stride != h or (W + stride - 1) // stride != w:
            raise ValueError(f'SLICLoss: image {H}x{W} does not map to the finest assignment '
                             f'grid {h}x{w} by an integer stride')
        if valid is None:
            valid = torch.ones(B, H, W, dtype=torch.bool, device=image.device)
        elif tuple(valid.shape) != (B, H, W):
            raise ValueError(f'SLICLoss: valid mask {tuple(valid.shape)} must be (B, H, W) = '
                             f'{(B, H, W)}')
        # float32 (also under AMP): Lab differences of a few units need more than fp16
        with torch.autocast(device_type=image.device.type, enabled=False):
            if self.protocol == 'original':
                return self.loss_weight * self._original(image, assignments, (h, w), stride, valid)
            with torch.no_grad():
                lab = rgb_to_lab(image.float() / 255.0)
                positions = pixel_positions(B, H, W, image.device) if self.m > 0 else None
            assignments = [a.float() for a in assignments]
            loss = slic_reconstruction_error(lab, positions, assignments, stride, self.m,
                                             valid.bool(), self.eps)
        return self.loss_weight * loss

    def _original(self, image: Tensor, assignments: List[Tensor], size: Sequence[int], stride: int,
                  valid: Tensor) -> Tensor:
        """``protocol='original'``: L_SLIC on the finest assignment grid ``size`` = (h, w)."""
        B = image.shape[0]
        with torch.no_grad():
            lab = rgb_to_lab(resize_to_grid(image.float() / 255.0, size))
            positions = pixel_positions(B, size[0], size[1], image.device) if self.m > 0 \
                else None
            # a grid cell counts if the image pixel nearest to it is not padding
            valid = F.interpolate(valid[:, None].float(), size=tuple(size), mode='nearest')[:, 0]
        largest_stride = stride * 2**(len(assignments) - 1)
        return slic_reconstruction_error_original(lab, positions, [a.float() for a in assignments],
                                                  largest_stride, self.m, valid > 0.5)
