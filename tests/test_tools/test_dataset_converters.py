# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/dataset_converters: coarse labels (synthetic + real CamVid), SUIM, Cityscapes, and their
error cases."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

import cityscapes_coarse  # tools/dataset_converters (setup.cfg: [tool:pytest] pythonpath)
import converter_utils
import make_coarse_labels
import suim
from tests.utils import CAMVID_ROOT, SUIM_CODES, make_cityscapes, make_suim

needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID_ROOT, 'trainannot')),
    reason=f'real CamVid data not found at {CAMVID_ROOT}')
CAMVID_NAMES = ['0001TP_006690.png', '0006R0_f00930.png', '0016E5_00390.png', '0016E5_05100.png']


def listdir_recursive(path):
    return sorted(osp.relpath(osp.join(r, f), path) for r, _, fs in os.walk(path) for f in fs)


# --------------------------------------------------------------------------- coarse labels
def test_make_coarse_erodes_square_exactly_and_keeps_holes():
    fine = np.zeros((100, 100), np.uint8)
    fine[30:70, 30:70] = 1  # 40x40 square
    fine[45:55, 45:55] = 2  # 10x10 inside it
    coarse = make_coarse_labels.make_coarse(fine, erode=3, epsilon=0)
    # Straight edges lose exactly 3 rows/columns: the 40x40 square keeps its 34x34 box,
    # the 10x10 one a 4x4 core.
    ys, xs = np.nonzero(coarse == 1)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (33, 66, 33, 66)
    assert np.count_nonzero(coarse == 2) == 4 * 4
    # Reference erosion: a pixel survives iff no other label within Euclidean distance 3
    # (offsets outside the image do not count).
    reference = np.full_like(fine, 255)
    padded = np.pad(fine.astype(int), 3, constant_values=-1)
    for c in (0, 1, 2):
        keep = fine == c
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                if dy * dy + dx * dx <= 9:
                    other = padded[3 + dy:103 + dy, 3 + dx:103 + dx]
                    keep &= (other == c) | (other == -1)
        reference[keep] = c
    assert np.array_equal(coarse, reference)
    assert coarse[50, 50] == 2 and coarse[40, 50] == 1  # the hole of class 1 is not filled
    assert coarse[31, 50] == 255 and coarse[0, 0] == 0  # the image border does not erode
    # Never a wrong class here (polygons exact with epsilon 0).
    labelled = coarse != 255
    assert np.array_equal(coarse[labelled], fine[labelled])


def test_make_coarse_ignores_void_and_small_regions():
    fine = np.zeros((60, 60), np.uint8)
    fine[:, 30:] = 1
    fine[:, 28:32] = 11  # void band (CamVid style)
    fine[5:8, 5:8] = 3  # tiny region: vanishes at N=4
    coarse = make_coarse_labels.make_coarse(fine, erode=4, ignore_values=(11, 255))
    assert set(np.unique(coarse)) == {0, 1, 255}
    assert (coarse[:, 24:36] == 255).all()  # 4 px eroded away from the void band on each side
    assert (coarse[30, :24] == 0).all() and (coarse[30, 36:] == 1).all()
    # N=0: no erosion, only void -> 255.
    coarse0 = make_coarse_labels.make_coarse(fine, erode=0, ignore_values=(11, ))
    assert np.array_equal(coarse0, np.where(fine == 11, 255, fine))


def _write_labels(directory, labels):
    os.makedirs(directory, exist_ok=True)
    for name, label in labels.items():
        cv2.imwrite(osp.join(directory, name), label)


def test_coarse_cli_no_overwrite_atomic_and_errors(tmp_path, capsys):
    rng = np.random.RandomState(0)
    labels = {
        f'{i}.png': np.kron(rng.randint(0, 3, (4, 5)), np.ones((20, 20), np.uint8)).astype(np.uint8)
        for i in range(4)
    }
    src, dst = str(tmp_path / 'fine'), str(tmp_path / 'coarse')
    _write_labels(src, labels)
    assert make_coarse_labels.main([src, dst, '--erode', '3', '--nproc', '1']) == 0
    out = capsys.readouterr().out
    assert '4 label maps written' in out and 'labelled pixels: fine 100.00% -> coarse' in out
    assert listdir_recursive(dst) == sorted(labels)  # no temporary files left
    first = {n: cv2.imread(osp.join(dst, n), cv2.IMREAD_UNCHANGED) for n in labels}
    # An existing output is kept (even if it is "wrong") unless --overwrite.
    cv2.imwrite(osp.join(dst, '0.png'), np.zeros((80, 100), np.uint8))
    assert make_coarse_labels.main([src, dst, '--erode', '3', '--nproc', '2']) == 0
    assert '0 written, 4 existing kept' in capsys.readouterr().out
    assert not cv2.imread(osp.join(dst, '0.png'), cv2.IMREAD_UNCHANGED).any()
    assert make_coarse_labels.main([src, dst, '--erode', '3', '--nproc', '2', '--overwrite']) == 0
    for name in labels:  # 2 processes give the same result as 1
        assert np.array_equal(cv2.imread(osp.join(dst, name), cv2.IMREAD_UNCHANGED), first[name])
    # Errors name the file / directory.
    assert make_coarse_labels.main([str(tmp_path / 'missing'), dst]) == 1
    assert 'missing' in capsys.readouterr().err
    cv2.imwrite(osp.join(src, 'rgb.png'), np.zeros((8, 8, 3), np.uint8))
    assert make_coarse_labels.main([src, str(tmp_path / 'c2'), '--nproc', '1']) == 1
    assert 'rgb.png' in capsys.readouterr().err


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = str(tmp_path / 'out' / 'a.png')

    def failing_imwrite(path, array, params=None):
        with open(path, 'wb') as f:  # a partial file under the temporary name
            f.write(b'\x89PNG partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(converter_utils.cv2, 'imwrite', failing_imwrite)
    with pytest.raises(KeyboardInterrupt):
        converter_utils.write_image_atomic(target, np.zeros((4, 4), np.uint8))
    assert os.listdir(tmp_path / 'out') == []


@needs_camvid
def test_coarse_labels_on_real_camvid(tmp_path):
    src = str(tmp_path / 'fine')
    os.makedirs(src)
    for name in CAMVID_NAMES:
        os.symlink(osp.abspath(osp.join(CAMVID_ROOT, 'trainannot', name)), osp.join(src, name))
    fractions = {}
    for n in (6, 12, 24):
        stats = make_coarse_labels.convert(
            src, str(tmp_path / f'n{n}'), erode=n, ignore_values=(11, 255), nproc=1, progress=False)
        assert stats['files'] == len(CAMVID_NAMES) and stats['written'] == len(CAMVID_NAMES)
        fractions[n] = stats['coarse_fraction']
        assert stats['coarse_error'] < 0.01  # polygons barely leave their class region
        if n == 12:
            fine_fraction = stats['fine_fraction']
            out = cv2.imread(str(tmp_path / 'n12' / CAMVID_NAMES[0]), cv2.IMREAD_UNCHANGED)
            assert out.shape == (360, 480) and out.dtype == np.uint8
            assert set(np.unique(out)) <= set(range(11)) | {255}
    assert 0.9 < fine_fraction <= 1.0
    # N=12 at 480x360 keeps roughly half to three quarters of the pixels.
    assert 0.45 < fractions[12] < 0.85, fractions
    assert fine_fraction > fractions[6] > fractions[12] > fractions[24] > 0.2


# --------------------------------------------------------------------------- SUIM


def test_suim_rgb_codes_and_off_colours():
    ids, fixed = suim.rgb_mask_to_ids(SUIM_CODES[None])
    assert ids.tolist() == [list(range(8))] and fixed == 0
    ids, fixed = suim.rgb_mask_to_ids(np.array([[[3, 250, 0], [200, 10, 230]]], np.uint8))
    assert ids.tolist() == [[2, 5]] and fixed == 2
    with pytest.raises(ValueError, match=r'mask x.bmp.*\(128, 128, 128\) at \(x=1, y=0\)'):
        suim.rgb_mask_to_ids(np.array([[[0, 0, 0], [128, 128, 128]]], np.uint8), path='mask x.bmp')


def test_suim_converter(tmp_path, capsys):
    src, out = str(tmp_path / 'SUIM'), str(tmp_path / 'suim')
    expected, off = make_suim(src)
    assert suim.main([src, out, '--num-val', '3', '--nproc', '2']) == 0
    printed = capsys.readouterr().out
    assert f'off-colour pixels fixed to the nearest code: {off} in 11 masks' in printed
    splits = {
        s: open(osp.join(out, 'splits', f'{s}.txt')).read().split()
        for s in ('train', 'val', 'test')
    }
    assert len(splits['val']) == 3 and len(splits['train']) == 5 and len(splits['test']) == 3
    assert not set(splits['train']) & set(splits['val'])
    assert suim.split_train_val(splits['train'] + splits['val'], 3, seed=0)[1] == splits['val']
    assert suim.split_train_val(splits['train'] + splits['val'], 3, seed=1)[1] != splits['val']
    for (split, name), ids in expected.items():
        out_split = 'train_val' if split == 'train_val' else 'test'
        ann = cv2.imread(osp.join(out, 'ann_dir', out_split, name + '.png'), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(osp.join(out, 'img_dir', out_split, name + '.jpg'))
        assert ann.shape == (12, 16) and img.shape == (12, 16, 3)  # halved
        assert np.array_equal(ann, ids[::2, ::2])  # 8x8 blocks: nearest keeps them exact
    # Second run keeps everything.
    assert suim.main([src, out, '--num-val', '3', '--nproc', '1']) == 0
    assert '0 written, 11 existing kept' in capsys.readouterr().out


def test_suim_converter_errors_name_files(tmp_path, capsys):
    src = str(tmp_path / 'SUIM')
    make_suim(src, n_train_val=5, n_test=1)
    bad = osp.join(src, 'train_val', 'masks', 'train_val_002.bmp')
    mask = cv2.imread(bad)
    mask[3, 4] = (128, 128, 128)
    cv2.imwrite(bad, mask)
    assert suim.main([src, str(tmp_path / 'o1'), '--num-val', '2', '--nproc', '1']) == 1
    err = capsys.readouterr().err
    assert 'train_val_002.bmp' in err and 'unknown colours' in err
    os.remove(bad)
    assert suim.main([src, str(tmp_path / 'o2'), '--num-val', '2']) == 1
    assert "no mask for image 'train_val_002'" in capsys.readouterr().err


# --------------------------------------------------------------------------- Cityscapes


def test_cityscapes_converter(tmp_path, capsys):
    src, out = str(tmp_path / 'cityscapes'), str(tmp_path / 'cs')
    make_cityscapes(src)
    assert cityscapes_coarse.main([src, out, '--width', '32', '--height', '16', '--nproc',
                                   '1']) == 0
    assert 'split train 1 / val 2 / test 1' in capsys.readouterr().out
    splits = {
        s: open(osp.join(out, 'splits', f'{s}.txt')).read().split()
        for s in ('train', 'val', 'test')
    }
    assert splits == dict(
        train=['bremen/bremen_000001_000019'],
        val=['aachen/aachen_000000_000019', 'weimar/weimar_000002_000019'],
        test=['frankfurt/frankfurt_000000_000294'])
    fine = cv2.imread(
        osp.join(out, 'gtFine', 'train', 'bremen', 'bremen_000001_000019_gtFine_labelTrainIds.png'),
        cv2.IMREAD_UNCHANGED)
    assert fine.shape == (16, 32)
    assert fine[0, 10] == 10 and fine[12, 10] == 0 and fine[12, 20] == 13 and fine[5, 1] == 255
    coarse = cv2.imread(
        osp.join(out, 'gtCoarse', 'train', 'bremen',
                 'bremen_000001_000019_gtCoarse_labelTrainIds.png'), cv2.IMREAD_UNCHANGED)
    assert coarse[12, 5] == 0 and coarse[12, 25] == 13  # road, car (from 'cargroup')
    assert coarse[2, 2] == 255 and coarse[2, 20] == 255  # deleted sky / nothing drawn
    img = cv2.imread(
        osp.join(out, 'leftImg8bit', 'val', 'frankfurt', 'frankfurt_000000_000294_leftImg8bit.png'))
    assert img.shape == (16, 32, 3)
    assert not osp.exists(osp.join(out, 'gtCoarse', 'val'))
    # Unknown label names are reported with the file.
    bad = osp.join(src, 'gtCoarse', 'train', 'aachen',
                   'aachen_000000_000019_gtCoarse_polygons.json')
    with open(bad, 'w') as f:
        json.dump(
            dict(
                imgHeight=32, imgWidth=64, objects=[dict(label='dragon', polygon=[[0, 0],
                                                                                  [1, 1]])]), f)
    assert cityscapes_coarse.main(
        [src, out, '--width', '32', '--height', '16', '--overwrite', '--nproc', '1']) == 1
    err = capsys.readouterr().err
    assert "'dragon'" in err and 'aachen_000000_000019_gtCoarse_polygons.json' in err


def test_cityscapes_converter_missing_label_and_no_overwrite(tmp_path, capsys):
    src, out = str(tmp_path / 'cityscapes'), str(tmp_path / 'cs')
    make_cityscapes(src)
    args = [src, out, '--width', '32', '--height', '16', '--nproc', '1']
    assert cityscapes_coarse.main(args) == 0
    capsys.readouterr()
    # existing outputs are kept without --overwrite
    kept = osp.join(out, 'gtFine', 'val', 'frankfurt',
                    'frankfurt_000000_000294_gtFine_labelTrainIds.png')
    cv2.imwrite(kept, np.full((16, 32), 7, np.uint8))
    assert cityscapes_coarse.main(args) == 0
    assert (cv2.imread(kept, cv2.IMREAD_UNCHANGED) == 7).all()
    # a missing fine label file is named
    missing = osp.join(src, 'gtFine', 'val', 'frankfurt',
                       'frankfurt_000000_000294_gtFine_labelIds.png')
    os.remove(missing)
    assert cityscapes_coarse.main(args + ['--overwrite']) == 1
    err = capsys.readouterr().err
    assert f'neither {missing} nor' in err, err


def test_coarse_cli_refuses_outputs_that_would_be_silently_wrong(tmp_path, capsys):
    """--out-ignore 256 (written as 0: every unlabelled pixel class 0) and an output directory
    that is the input (fine labels overwritten, or kept as "coarse" without --overwrite) or
    inside it."""
    src = str(tmp_path / 'fine')
    os.makedirs(src)
    fine = np.zeros((16, 16), np.uint8)
    fine[4:12, 4:12] = 2
    cv2.imwrite(osp.join(src, 'a.png'), fine)
    dst = str(tmp_path / 'coarse')
    for args, match in [([src, dst, '--out-ignore', '256'], 'must be an int in 0..255'),
                        ([src, dst, '--out-ignore', '-1'], 'must be an int in 0..255'),
                        ([src, src], 'is the input directory'),
                        ([src, src, '--overwrite'], 'is the input directory'),
                        ([src, osp.join(src, 'coarse')], 'or inside it')]:
        assert make_coarse_labels.main(args + ['--nproc', '1']) == 1
        assert match in capsys.readouterr().err
    np.testing.assert_array_equal(cv2.imread(osp.join(src, 'a.png'), cv2.IMREAD_UNCHANGED), fine)
    assert not osp.exists(dst)
