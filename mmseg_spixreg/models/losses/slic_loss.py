"""SLIC regulariser (de Jong et al., eq. 4) and the exact sRGB -> CIELAB (D65) conversion."""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...ops import superpixel_reconstruct

# sRGB (IEC 61966-2-1) linear RGB -> XYZ matrix for the D65 white point, and that white point
# (the matrix' row sums), as in B. Lindbloom's tables.
_RGB2XYZ = ((0.4124564, 0.3575761, 0.1804375),
            (0.2126729, 0.7151522, 0.0721750),
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
    Matches ``cv2.cvtColor(img, cv2.COLOR_RGB2Lab)`` on float32 images in [0, 1] (OpenCV uses the
    rounded constants 0.008856 / 7.787, so they agree to ~1e-2 Lab units).

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
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON).pow(1.0 / 3.0),
                    (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)
    return lab.to(dtype) if dtype.is_floating_point else lab


def slic_reconstruction_error(features: Tensor, positions: Optional[Tensor],
                              assignments: Sequence[Tensor], m: float, weight: Tensor,
                              eps: float = 1e-6) -> Tensor:
    """Eq. 4: mean over pixels of ``||x[p] - q(x, A)[p]||_2 + m ||P[p] - q(P, A)[p]||_2``.

    Args:
        features (Tensor): (B, C, H, W) per-pixel colour (CIELAB) on the finest learned grid.
        positions (Tensor | None): (B, 2, H, W) pixel positions P (None when ``m == 0``).
        assignments (Sequence[Tensor]): [A(s) (B, 9, He, We), ...] finest first; (He, We) is
            (H, W) rounded up to even.
        m (float): weight of the position term.
        weight (Tensor): (B, H, W) non-negative per-pixel weights (fraction of valid image pixels);
            the result is the weighted mean.
        eps (float): added under the square roots so the gradient at an exact fit is finite.

    Returns:
        Tensor: scalar loss (not multiplied by lambda).
    """
    h, w = features.shape[-2:]
    x = features if positions is None else torch.cat((features, positions), dim=1)
    he, we = assignments[0].shape[-2:]
    if (he, we) != (h, w):
        x = F.pad(x, (0, we - w, 0, he - h), mode='replicate')
    q = superpixel_reconstruct(x, list(assignments))[..., :h, :w]
    x = x[..., :h, :w]
    c = features.shape[1]
    err = ((x[:, :c] - q[:, :c]).pow(2).sum(dim=1) + eps).sqrt()
    if positions is not None and m > 0:
        err = err + m * ((x[:, c:] - q[:, c:]).pow(2).sum(dim=1) + eps).sqrt()
    return (err * weight).sum() / weight.sum().clamp(min=eps)


@MODELS.register_module()
class SLICLoss(nn.Module):
    """The SLIC regulariser L_SLIC (eq. 4), returned as ``loss_weight * L_SLIC``.

    Levels (design decision): only A(4) and A(8) are learned; A(1) and A(2) are treated as the
    fixed regular (box) assignment of each pixel to its own stride-2 cell. With box assignments
    superpixel downsampling is exact area averaging and upsampling is nearest-neighbour, so the
    chain 1 -> 2 -> 4 collapses to ``avg_pool(lab, 4)``, and the loss is evaluated on the stride-4
    grid: ``x = avg_pool4(lab(I))``, ``q = q(x, [A(4), A(8)])``. This is the part of the
    reconstruction error that the learned assignments can change (sub-cell colour variance is a
    constant for them), at 1/16 of the full-resolution cost.

    Normalisation: the per-pixel Euclidean norms are averaged over the (valid) stride-4 pixels
    of the batch, with CIELAB in its natural units (L in [0, 100]). Measured on CamVid images
    (16x16-pixel coarsest superpixels): ~8 Lab units for a randomly initialised model, ~5 for the
    regular grid; so with the paper's lambda = 0.075 (Cityscapes) / 0.05 (SUIM) the term is
    ~0.25-0.6: below the initial cross-entropy (ln 19 = 2.9), the order of the CE late in
    training, i.e. a regulariser, not the dominant loss.
    Positions P are stride-4 grid coordinates divided by the coarsest seed spacing
    (2 ** number of levels, i.e. 4 for [A(4), A(8)]), so m is in SLIC's "compactness per
    superpixel interval" units. Padding pixels (from ``padding_size``) get zero weight.

    Args:
        loss_weight (float): lambda (>= 0). Default: 0.075.
        m (float): weight of the position term (>= 0). Default: 0.0 (paper).
        eps (float): numerical epsilon under the norms. Default: 1e-6.
        loss_name (str): key in the loss dict. Default: 'loss_slic'.
    """

    def __init__(self, loss_weight: float = 0.075, m: float = 0.0, eps: float = 1e-6,
                 loss_name: str = 'loss_slic') -> None:
        super().__init__()
        if not (isinstance(loss_weight, (int, float)) and math.isfinite(loss_weight)
                and loss_weight >= 0):
            raise ValueError(f'SLICLoss: loss_weight (lambda) must be >= 0, got {loss_weight!r}')
        if not (isinstance(m, (int, float)) and math.isfinite(m) and m >= 0):
            raise ValueError(f'SLICLoss: m must be >= 0, got {m!r}')
        self.loss_weight = float(loss_weight)
        self.m = float(m)
        self.eps = eps
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, image: Tensor, assignments: List[Tensor], fine_size: Sequence[int],
                valid: Optional[Tensor] = None) -> Tensor:
        """Args:
            image (Tensor): (B, 3, H, W) un-normalised RGB in [0, 255].
            assignments (list[Tensor]): [A(4), A(8), ...] finest first, (B, 9, He, We) each.
            fine_size (Sequence[int]): true (h, w) of the finest learned grid (stride s =
                ceil(H / h)).
            valid (Tensor, optional): (B, H, W) bool/float mask of real (non-padding) pixels.

        Returns:
            Tensor: scalar ``loss_weight * L_SLIC``.
        """
        h, w = int(fine_size[0]), int(fine_size[1])
        H, W = image.shape[-2:]
        stride = int(round(H / h))
        if stride < 1 or (H + stride - 1) // stride != h or (W + stride - 1) // stride != w:
            raise ValueError(f'SLICLoss: image {H}x{W} does not map to the finest assignment '
                             f'grid {h}x{w} by an integer stride')
        with torch.no_grad(), torch.autocast(device_type=image.device.type, enabled=False):
            lab = rgb_to_lab(image.float() / 255.0)
            if stride > 1:
                lab = F.avg_pool2d(lab, stride, ceil_mode=True)
            if valid is None:
                weight = lab.new_ones(lab.shape[0], h, w)
            else:
                weight = valid.to(lab.dtype)[:, None]
                if stride > 1:
                    weight = F.avg_pool2d(weight, stride, ceil_mode=True)
                weight = weight[:, 0]
            positions = None
            if self.m > 0:
                scale = float(2**len(assignments))
                ys = torch.arange(h, dtype=lab.dtype, device=lab.device) / scale
                xs = torch.arange(w, dtype=lab.dtype, device=lab.device) / scale
                gy, gx = torch.meshgrid(ys, xs, indexing='ij')
                positions = torch.stack((gy, gx))[None].expand(lab.shape[0], -1, -1, -1)
        # float32 (also under AMP): Lab differences of a few units need more than fp16
        with torch.autocast(device_type=image.device.type, enabled=False):
            assignments = [a.float() for a in assignments]
            loss = slic_reconstruction_error(lab, positions, assignments, self.m, weight,
                                             self.eps)
        return self.loss_weight * loss
