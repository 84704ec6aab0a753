# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The paper's equations against an independent, literal reading of them.

* eq. 4 (L_SLIC) and eq. 8 (ASA) through eq. 3 written as sums over pixels and seeds, with the
  unlearned levels A(1), A(2) as explicit box assignments (each pixel to its own cell), in
  float64 numpy loops; CIELAB from the CIE formulas;
* eq. 7 (BR_paper) with explicit pixel sets.

Nothing here uses a helper of the code under test (only the public functions being checked).
"""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmseg_spixreg.evaluation import (asa_from_assignments, asa_from_assignments_counts,
                                      boundary_recall, boundary_recall_counts)
from mmseg_spixreg.models.losses import SLICLoss
from tests.utils import CAMVID_ROOT, REPO_ROOT, blocky_label_maps

needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID_ROOT, 'val')),
    reason=f'real CamVid data not found at {CAMVID_ROOT}')
CAMVID_NAMES = ['0016E5_07959.png', '0016E5_08085.png', '0016E5_08157.png']


# ---------------------------------------------------------------------------- literal eq. 3
def seed_of(j, y, x):
    """Seed j of fine pixel (y, x): the 3x3 coarse cells around the pixel's own cell."""
    return y // 2 + j // 3 - 1, x // 2 + j % 3 - 1


def seed_links(h, w):
    """Every (j, y, x, sy, sx) of an h x w fine grid whose seed j, (sy, sx), is in the map."""
    for y in range(h):
        for x in range(w):
            for j in range(9):
                sy, sx = seed_of(j, y, x)
                if 0 <= sy < h // 2 and 0 <= sx < w // 2:
                    yield j, y, x, sy, sx


def box_assignment(h, w):
    """A(1) / A(2): every pixel entirely assigned to its own cell (j = 4)."""
    a = np.zeros((9, h, w))
    a[4] = 1.0
    return a


def random_assignment(h, w, rng):
    """Soft assignment: random positive weights over the in-map seeds, summing to 1."""
    weights = np.exp(2 * rng.standard_normal((9, h, w)))
    a = np.zeros((9, h, w))
    for j, y, x, _, _ in seed_links(h, w):
        a[j, y, x] = weights[j, y, x]
    return a / a.sum(0, keepdims=True)


def literal_q(features, levels):
    """Eq. 3: q(x, A) = U_1(...U_L(D_L(...D_1(x)))) as sums over pixels p and seeds s.

    D: c_s = sum_p A_ps x_p / sum_p A_ps; U: x'_p = sum_s A_ps c_s.
    features (C, H, W); levels: [(9, H_l, W_l)] finest first.
    """
    values = [np.asarray(features, np.float64)]
    for a in levels:
        fine = values[-1]
        c, hf, wf = fine.shape
        num = np.zeros((c, hf // 2, wf // 2))
        den = np.zeros((hf // 2, wf // 2))
        for j, y, x, sy, sx in seed_links(hf, wf):
            num[:, sy, sx] += a[j, y, x] * fine[:, y, x]
            den[sy, sx] += a[j, y, x]
        values.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0))
    coarse = values[-1]
    for a in reversed(levels):
        hf, wf = a.shape[1:]
        fine = np.zeros((coarse.shape[0], hf, wf))
        for j, y, x, sy, sx in seed_links(hf, wf):
            fine[:, y, x] += a[j, y, x] * coarse[:, sy, sx]
        coarse = fine
    return coarse


def literal_lab(rgb):
    """CIELAB (D65) of RGB in [0, 1], (3, H, W), from the sRGB and CIE definitions."""
    rgb = np.asarray(rgb, np.float64)
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055)**2.4, rgb / 12.92)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = np.tensordot(m, lin, axes=1) / np.array([0.95047, 1.0, 1.08883])[:, None, None]
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def literal_slic_loss(rgb255, a4, a8, m, valid):
    """Eq. 4 over the hierarchy [A1, A2, A4, A8] (A1, A2 box), mean over valid pixels."""
    _, h, w = rgb255.shape
    lab = literal_lab(rgb255 / 255.0)
    levels = [box_assignment(h, w), box_assignment(h // 2, w // 2), a4, a8]
    q = literal_q(lab, levels)
    err = np.sqrt(((lab - q)**2).sum(0))
    if m > 0:
        pos = np.stack(np.meshgrid(np.arange(w), np.arange(h), indexing='xy')).astype(float)
        err = err + m * np.sqrt(((pos - literal_q(pos, levels))**2).sum(0))
    return err[valid].sum() / valid.sum()


def literal_asa(gt, a4, a8, num_classes, ignore_index=255):
    """Eq. 8: accuracy of argmax q(onehot(y), [A1, A2, A4, A8]) over the labelled pixels."""
    h4, w4 = a4.shape[1:]
    H, W = gt.shape
    onehot = np.zeros((num_classes, 4 * h4, 4 * w4))
    for y in range(H):
        for x in range(W):
            if gt[y, x] != ignore_index:
                onehot[gt[y, x], y, x] = 1.0
    levels = [box_assignment(4 * h4, 4 * w4), box_assignment(2 * h4, 2 * w4), a4, a8]
    pred = literal_q(onehot, levels).argmax(0)[:H, :W]
    labelled = gt != ignore_index
    return int(((pred == gt) & labelled).sum()), int(labelled.sum())


def t(a):
    return torch.from_numpy(np.asarray(a, np.float32))[None]


def camvid_rgb_crop(name, y0, x0, h, w):
    bgr = cv2.imread(osp.join(CAMVID_ROOT, 'val', name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    return bgr[y0:y0 + h, x0:x0 + w, ::-1].transpose(2, 0, 1).astype(np.float64)


# ---------------------------------------------------------------------------- eq. 4
@needs_camvid
@pytest.mark.parametrize('name, m, padded', [
    (CAMVID_NAMES[0], 0.0, False),
    (CAMVID_NAMES[1], 0.0, True),
    (CAMVID_NAMES[2], 0.5, False),
    (CAMVID_NAMES[0], 2.0, True),
])
def test_slic_loss_is_eq4_on_camvid_crops(name, m, padded):
    rng = np.random.default_rng(CAMVID_NAMES.index(name) + int(10 * m) + 100 * padded)
    h, w = 32, 48
    rgb = camvid_rgb_crop(name, 150, 200, h, w)
    a4, a8 = random_assignment(8, 12, rng), random_assignment(4, 6, rng)
    valid = np.ones((h, w), bool)
    if padded:  # bottom/right padding as the data preprocessor makes it (replicated pixels)
        valid[29:] = False
        valid[:, 43:] = False
        rgb[:, 29:] = rgb[:, 28:29]
        rgb[:, :, 43:] = rgb[:, :, 42:43]
    expected = literal_slic_loss(rgb, a4, a8, m, valid)
    lam = 0.3
    got = SLICLoss(
        loss_weight=lam, m=m)(t(rgb), [t(a4), t(a8)], (8, 12), torch.from_numpy(valid)[None])
    assert got.item() == pytest.approx(lam * expected, rel=1e-4)


def hard(h, w, moves):
    """(9, h, w) hard assignment: every pixel on its own cell (j = 4) except ``moves``
    {(y, x): j}."""
    a = np.zeros((9, h, w))
    a[4] = 1.0
    for (y, x), j in moves.items():
        a[:, y, x] = 0.0
        a[j, y, x] = 1.0
    return a


def test_slic_loss_4x4_cell_example():
    """The issue's example: a 4x4 cell with 10 pixels at L = 0 and 6 at L = 100.

    Per pixel, reconstruction r: the full-resolution eq. 4 gives (10 |r| + 6 |100 - r|) / 16,
    46.875 at r = mean = 37.5 and 37.5 at r = 0; the former stride-4 evaluation |37.5 - r|
    gives 0 and 37.5. Checked through SLICLoss on images whose reconstructions are known by hand.
    """
    cell = np.zeros((4, 4))
    cell.flat[10:] = 255.0  # 10 black (L = 0), 6 white (L = 100) pixels
    # (almost) no epsilon under the norms: sqrt(x + 1e-12) is within 1e-6 of the exact norm
    # (eps = 0 is refused: the gradient at an exact fit would be infinite)
    loss = SLICLoss(loss_weight=1.0, m=0.0, eps=1e-12)
    # every cell alike: any assignment reconstructs the cell mean 37.5 everywhere
    rng = np.random.default_rng(0)
    rgb = np.broadcast_to(np.tile(cell, (4, 4)), (3, 16, 16))
    a4, a8 = random_assignment(4, 4, rng), random_assignment(2, 2, rng)
    assert loss(t(rgb), [t(a4), t(a8)], (4, 4)).item() == pytest.approx(46.875, abs=1e-3)

    # 32x32 black image with the cell at the top-left; hard assignments (all weight on j)
    rgb = np.zeros((3, 32, 32))
    rgb[:, :4, :4] = cell
    # (a) own seeds everywhere: the top-left 16x16 superpixel mixes the cell with 15 black
    # cells, r = 37.5 / 4 / 4 = 2.34375 on all 16 of its cells:
    # (10 r + 6 (100 - r) + 240 r) / 1024
    merged = loss(t(rgb), [t(hard(8, 8, {})), t(hard(4, 4, {}))], (8, 8)).item()
    assert merged == pytest.approx((10 * 2.34375 + 6 * 97.65625 + 240 * 2.34375) / 1024, abs=1e-4)
    # (b) the cell's three stride-4 neighbours and stride-8 neighbours move to the right/lower
    # seeds: the cell is a superpixel on its own, r = 37.5 there and 0 elsewhere
    a4 = hard(8, 8, {(0, 1): 5, (1, 0): 7, (1, 1): 8})
    a8 = hard(4, 4, {(0, 1): 5, (1, 0): 7, (1, 1): 8})
    alone = loss(t(rgb), [t(a4), t(a8)], (8, 8)).item()
    assert alone == pytest.approx(16 * 46.875 / 1024, abs=1e-4)


# ---------------------------------------------------------------------------- eq. 7
def literal_boundary(label, ignore=None):
    h, w = label.shape
    out = set()
    for y in range(h):
        for x in range(w):
            if ignore is not None and label[y, x] == ignore:
                continue
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and label[yy, xx] != label[y, x] and (
                        ignore is None or label[yy, xx] != ignore):
                    out.add((y, x))
                    break
    return out


def literal_within(pixels, r, h, w):
    """b(., r): every pixel with a pixel of the set within its (2r+1)^2 window."""
    return {(y + dy, x + dx)
            for y, x in pixels
            for dy in range(-r, r + 1)
            for dx in range(-r, r + 1) if 0 <= y + dy < h and 0 <= x + dx < w}


def literal_br_paper(pred, gt, r, ignore=255):
    h, w = gt.shape
    p0, g0 = literal_boundary(pred), literal_boundary(gt, ignore)
    hit = len(p0 & literal_within(g0, r, h, w))
    missed = len(g0 - literal_within(p0, r, h, w))
    return hit, hit + missed


def test_br_paper_8x8_by_hand():
    gt = np.zeros((8, 8), np.int64)
    gt[:, 4:] = 1  # gt boundary: columns 3 and 4 (16 px)
    pred = np.zeros((8, 8), np.int64)
    pred[:, 6:] = 1  # edge two columns to the right: boundary columns 5, 6
    pred[:2, :3] = 2  # plus a spurious block at the top-left (9 boundary pixels)
    # r = 1: predicted boundary pixels within 1 of columns 3/4 (columns 2..5): column 5 (8)
    # + (0,2), (0,3), (1,2), (1,3), (2,2) = 13; gt boundary pixels no predicted boundary comes
    # within 1 of: column 3, rows 4..7 = 4. Eq. 7: 13 / (13 + 4); Stutz: 12 / 16.
    assert boundary_recall_counts(pred, gt, r=1, mode='paper') == (13, 17)
    assert boundary_recall(pred, gt, r=1, mode='paper') == pytest.approx(13 / 17)
    assert boundary_recall(pred, gt, r=1) == 0.75
    assert literal_br_paper(pred, gt, 1) == (13, 17)
    # r = 0: the predicted boundary pixels on columns 3/4 are (0,3), (1,3); the other 14 gt
    # boundary pixels are missed: 2 / (2 + 14)
    assert boundary_recall_counts(pred, gt, r=0, mode='paper') == (2, 16)
    assert literal_br_paper(pred, gt, 0) == (2, 16)
    # no gt boundary: nothing to score
    assert boundary_recall_counts(pred, np.zeros((8, 8), np.int64), mode='paper') == (0, 0)
    with pytest.raises(ValueError, match='mode'):
        boundary_recall(pred, gt, mode='recall')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_br_paper_matches_literal_sets(seed):
    gt, pred = blocky_label_maps(seed)
    for r in (0, 1, 2, 4):
        assert boundary_recall_counts(pred, gt, r=r, mode='paper') == \
            literal_br_paper(pred, gt, r)


# ---------------------------------------------------------------------------- eq. 8
def test_asa_eq8_8x8_by_hand():
    """8x8 labels in four 4x4 cells: class 0 | class 0 / class 1 | 12 px class 2 + 4 void.

    The 8x8 map lies in a 16x16 grid (stride 16): A(8) has a single top seed, so every pixel
    is reconstructed to the top seed's value, the mean over the stride-8 seeds of their
    A(4)-weighted cell means of the one-hot labels.
    (a) own seeds: stride-8 seed (0, 0) holds the four labelled cells: (1/2, 1/4, 3/16), the
    other three hold only unlabelled cells: argmax class 0 -> 32 of 60 labelled pixels.
    (b) the two class-0 cells move to the seeds (1, 1) and (0, 1), each sharing it with four
    unlabelled cells: (1/5, 0, 0) twice, seed (0, 0) keeps (0, 1/2, 3/8); top mean
    (0.4, 0.5, 0.375) / 4: argmax class 1 -> 16 of 60.
    """
    gt = np.zeros((8, 8), np.int64)
    gt[4:, :4] = 1
    gt[4:, 4:] = 2
    gt[7, 4:] = 255
    a8 = hard(2, 2, {})
    assert asa_from_assignments_counts(gt, [t(hard(4, 4, {})), t(a8)], 3) == (32, 60)
    assert asa_from_assignments(gt, [t(hard(4, 4, {})), t(a8)], 3) == pytest.approx(32 / 60)
    moved = hard(4, 4, {(0, 0): 8, (0, 1): 5})
    assert asa_from_assignments_counts(gt, [t(moved), t(a8)], 3) == (16, 60)
    assert literal_asa(gt, moved, a8, 3) == (16, 60)
    assert literal_asa(gt, hard(4, 4, {}), a8, 3) == (32, 60)


@needs_camvid
@pytest.mark.parametrize('name, ignore_band', [(CAMVID_NAMES[0], False), (CAMVID_NAMES[1], True),
                                               (CAMVID_NAMES[2], False)])
def test_asa_eq8_matches_literal_on_camvid_labels(name, ignore_band):
    gt = cv2.imread(osp.join(CAMVID_ROOT, 'valannot', name), cv2.IMREAD_UNCHANGED)
    assert gt is not None, name
    gt = gt[200:230, 100:145].astype(np.int64)  # 30x45: padded to the 32x48 grid
    gt[gt == 11] = 255
    if ignore_band:
        gt[10:14] = 255
    rng = np.random.default_rng(len(name) + ignore_band)
    a4, a8 = random_assignment(8, 12, rng), random_assignment(4, 6, rng)
    got = asa_from_assignments_counts(torch.from_numpy(gt), [t(a4), t(a8)], 11)
    assert got == literal_asa(gt, a4, a8, 11)
    assert 0 < got[0] <= got[1] == int((gt != 255).sum())


def test_asa_eq8_input_errors():
    gt = np.zeros((30, 45), np.int64)
    a4, a8 = torch.full((1, 9, 8, 12), 1 / 9), torch.full((1, 9, 4, 6), 1 / 9)
    with pytest.raises(ValueError, match='same geometry'):
        asa_from_assignments(gt[:, :20], [a4, a8], 3)
    bad = gt.copy()
    bad[0, 0] = 7
    with pytest.raises(ValueError, match='outside'):
        asa_from_assignments(bad, [a4, a8], 3)
    with pytest.raises(TypeError):
        asa_from_assignments(gt.astype(np.float32), [a4, a8], 3)
    assert np.isnan(asa_from_assignments(np.full((30, 45), 255), [a4, a8], 3))


# ---------------------------------------------------------------------------- the data path
def test_model_attaches_assignments_and_metric_computes_eq8():
    """SpixEncoderDecoder -> pred_assignments (network geometry) -> metric ASA (eq. 8)."""
    from mmengine.config import Config
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import METRICS, MODELS
    from mmseg.structures import SegDataSample

    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'hcfcn_r34_cityscapes_fine.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.base_channels = 16
    cfg.model.neck.in_channels = [16, 32, 64]
    cfg.model.decode_head.in_channels = cfg.model.decode_head.channels = 64
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 60, 76), generator=g, dtype=torch.uint8)
    gt = torch.randint(0, 19, (1, 120, 152), generator=g)
    gt[:, :10] = 255

    def view(flip):
        """(inputs, data_samples) of the image as the network sees it, flipped or not."""
        sample = SegDataSample(gt_sem_seg=PixelData(data=gt.clone()))
        sample.set_metainfo(
            dict(
                img_shape=(60, 76),
                ori_shape=(120, 152),
                flip=flip,
                flip_direction='horizontal',
                img_path='x.png'))
        return [image.flip(-1) if flip else image], [sample]

    views = [view(flip) for flip in (False, True)]
    outs = []
    for inputs, samples in views:
        batch = dict(inputs=inputs, data_samples=samples)
        with torch.no_grad():
            outs.append(model.test_step(copy.deepcopy(batch))[0])
    for out, flip in zip(outs, (False, True)):
        pa = out.pred_assignments
        # padded to 64x80 by test_cfg.size_divisor=16: the 16x20 / 8x10 grids of 60x76
        assert [tuple(a.shape) for a in pa.assignments] == [(1, 9, 16, 20), (1, 9, 8, 10)]
        assert pa.img_shape == (60, 76) and pa.flip is flip and pa.levels == (4, 8)
        assert torch.allclose(pa.assignments[0].sum(1), torch.ones(1, 16, 20), atol=1e-5)
        # the metric: gt nearest-resized to the network input, flipped like it
        gt_net = gt[0, ::2, ::2]
        if flip:
            gt_net = gt_net.flip(-1)
        expected = asa_from_assignments(gt_net, pa.assignments, 19)
        evaluator = Evaluator([METRICS.build(dict(type='SuperpixelBoundaryMetric'))])
        evaluator.dataset_meta = dict(classes=tuple(range(19)))
        evaluator.process([out])
        res = evaluator.evaluate(1)
        assert res['ASA'] == pytest.approx(100 * expected, abs=1e-3)
        assert res['ClsErr'] == pytest.approx(res['ASA'] - res['PixAcc'], abs=1e-3)
        assert {'SpixASA', 'SpixBR', 'BR', 'BR_paper'} <= set(res)
    tta = MODELS.build(dict(type='SpixSegTTAModel', module=model))
    with torch.no_grad():
        merged = tta.test_step(
            copy.deepcopy(dict(inputs=[v[0] for v in views],
                               data_samples=[v[1] for v in views])))[0]
    # TTA keeps the first (un-flipped) view's assignments with their own geometry
    assert merged.pred_assignments.flip is False
    assert torch.equal(merged.pred_assignments.assignments[0],
                       outs[0].pred_assignments.assignments[0])
