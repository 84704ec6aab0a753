# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Dataset classes and configs/_base_/datasets/*: CamVid (real data), SUIM, Cityscapes coarse."""
import copy
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmseg_spixreg.datasets  # noqa: F401  (registers CamVidDataset, SUIMDataset)
import mmseg_spixreg.evaluation  # noqa: F401  (registers SuperpixelBoundaryMetric)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(ROOT, 'configs', '_base_', 'datasets')
CAMVID = osp.join(ROOT, '..', 'shared', 'data', 'camvid')
needs_camvid = pytest.mark.skipif(
    not osp.isdir(osp.join(CAMVID, 'valannot')),
    reason=f'real CamVid data not found at {osp.normpath(CAMVID)}')

init_default_scope('mmseg')


@pytest.fixture
def in_repo_root(monkeypatch):
    """Configs give paths relative to the repository root (where tools/train.py runs)."""
    monkeypatch.chdir(ROOT)


def build(dataset_cfg, **overrides):
    cfg = copy.deepcopy(dataset_cfg)
    cfg.update(overrides)
    return DATASETS.build(cfg)


def test_all_dataset_configs_load():
    names = [
        'camvid', 'camvid_coarse', 'cityscapes_1024x512', 'cityscapes_coarse_1024x512', 'suim',
        'suim_coarse'
    ]
    for name in names:
        cfg = Config.fromfile(osp.join(CFG_DIR, f'{name}.py'))
        assert [e['type'] for e in cfg.val_evaluator] == ['IoUMetric',
                                                          'SuperpixelBoundaryMetric'], name
        train = cfg.train_dataloader.dataset.pipeline
        if not name.startswith('camvid'):
            crop = [t for t in train if t['type'] == 'RandomCrop'][0]
            assert tuple(crop['crop_size']) == (512, 512), name
        assert any(t['type'] == 'RandomFlip' for t in train), name


@needs_camvid
def test_camvid_val_void_becomes_ignore(in_repo_root):
    cfg = Config.fromfile(osp.join(CFG_DIR, 'camvid.py'))
    val = build(cfg.val_dataloader.dataset)
    assert len(val) == 101
    assert val.metainfo['classes'][0] == 'Sky' and len(val.metainfo['classes']) == 11
    assert val.metainfo['label_map'] == {11: 255}
    for idx in range(3):
        sample = val[idx]['data_samples']
        gt = sample.gt_sem_seg.data.numpy()[0]
        raw = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
        assert gt.shape == raw.shape == (360, 480)
        assert (raw == 11).any()  # these images do contain void
        assert np.array_equal(gt, np.where(raw == 11, 255, raw))


@needs_camvid
def test_camvid_train_pipeline_and_class_subset(in_repo_root):
    cfg = Config.fromfile(osp.join(CFG_DIR, 'camvid.py'))
    train = build(cfg.train_dataloader.dataset, indices=2)
    sample = train[0]
    assert tuple(sample['inputs'].shape) == (3, 352, 352)
    assert not (sample['data_samples'].gt_sem_seg.data == 11).any()
    # Selecting classes still maps void to 255 and renumbers the rest.
    subset = build(cfg.val_dataloader.dataset, indices=1, metainfo=dict(classes=('Road', 'Car')))
    assert subset.metainfo['label_map'][3] == 0 and subset.metainfo['label_map'][8] == 1
    assert subset.metainfo['label_map'][11] == 255
    gt = subset[0]['data_samples'].gt_sem_seg.data.numpy()
    assert set(np.unique(gt)) <= {0, 1, 255}


@needs_camvid
def test_camvid_coarse_config_reads_tool_output(in_repo_root, tmp_path):
    import make_coarse_labels
    names = sorted(os.listdir(osp.join(CAMVID, 'trainannot')))[:2]
    src = tmp_path / 'fine'
    src.mkdir()
    for name in names:
        os.symlink(osp.abspath(osp.join(CAMVID, 'trainannot', name)), src / name)
    coarse_dir = tmp_path / 'coarse' / 'trainannot'
    make_coarse_labels.convert(
        str(src), str(coarse_dir), erode=12, ignore_values=(11, 255), nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(CFG_DIR, 'camvid_coarse.py'))
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.data_prefix.seg_map_path == 'data/camvid_coarse/n12/trainannot'
    ds_cfg.data_prefix.seg_map_path = str(coarse_dir)  # absolute: not joined with data_root
    ds_cfg.data_prefix.img_path = osp.join(CAMVID, 'train')
    ds_cfg.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    train = build(ds_cfg, indices=2)  # the first two (sorted) images: the converted ones
    sample = train[0]['data_samples']
    assert sample.seg_map_path == osp.join(str(coarse_dir), names[0])
    gt = sample.gt_sem_seg.data.numpy()[0]
    assert 0.3 < (gt == 255).mean() < 0.6  # coarse: a large unlabelled part


def test_suim_dataset_from_converter_output(tmp_path):
    import suim
    from test_converters import _make_suim
    _make_suim(str(tmp_path / 'SUIM'), n_train_val=6, n_test=2)
    out = str(tmp_path / 'suim')
    suim.convert(str(tmp_path / 'SUIM'), out, num_val=2, nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(CFG_DIR, 'suim.py'))
    sizes = {}
    for split in ('train', 'val', 'test'):
        ds = build(cfg[f'{split}_dataloader'].dataset, data_root=out)
        sizes[split] = len(ds)
        sample = ds[0]
        gt = sample['data_samples'].gt_sem_seg.data
        assert int(gt.max()) < 8
    assert sizes == dict(train=4, val=2, test=2)
    assert ds.metainfo['classes'][1] == 'human divers'
    coarse_cfg = Config.fromfile(osp.join(CFG_DIR, 'suim_coarse.py'))
    assert coarse_cfg.train_dataloader.dataset.data_prefix.seg_map_path == \
        'ann_dir_coarse_n12/train_val'
    assert coarse_cfg.val_dataloader.dataset.data_prefix.seg_map_path == 'ann_dir/train_val'


def test_cityscapes_coarse_config_reads_converter_output(tmp_path):
    import cityscapes_coarse
    from test_converters import _make_cityscapes
    _make_cityscapes(str(tmp_path / 'raw'), size=(1024, 512))
    out = str(tmp_path / 'cs')
    cityscapes_coarse.convert(str(tmp_path / 'raw'), out, nproc=1, progress=False)
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cityscapes_coarse_1024x512.py'))
    train = build(cfg.train_dataloader.dataset, data_root=out)
    assert type(train).__name__ == 'SpixCityscapesDataset' and len(train) == 1
    item = train[0]
    assert item['data_samples'].seg_map_path.endswith(
        osp.join('gtCoarse', 'train', 'bremen', 'bremen_000001_000019_gtCoarse_labelTrainIds.png'))
    assert tuple(item['inputs'].shape) == (3, 512, 512)
    val = build(cfg.val_dataloader.dataset, data_root=out)
    test = build(cfg.test_dataloader.dataset, data_root=out)
    assert len(val) == 2 and len(test) == 1
    assert val[0]['data_samples'].seg_map_path.endswith('_gtFine_labelTrainIds.png')
    gt = test[0]['data_samples'].gt_sem_seg.data.numpy()[0]
    assert gt.shape == (512, 1024) and set(np.unique(gt)) == {0, 10, 13, 255}
    fine_cfg = Config.fromfile(osp.join(CFG_DIR, 'cityscapes_1024x512.py'))
    fine_train = build(fine_cfg.train_dataloader.dataset, data_root=out)
    assert fine_train[0]['data_samples'].seg_map_path.endswith('_gtFine_labelTrainIds.png')


# --- missing data: what is missing and the README command that makes it -------------------------

DATASET_CONFIGS = [
    'camvid', 'camvid_coarse', 'cityscapes_1024x512', 'cityscapes_coarse_1024x512', 'suim',
    'suim_coarse'
]


def _readme_data_section():
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text.split('\n## Data\n', 1)[1].split('\n## ', 1)[0]
    return ' '.join(section.split())


def _expected_steps(name, split):
    """The instructions each data set's error must give (as README's Data section has them)."""
    coarse_train = split == 'train' and name.endswith('coarse')
    if name.startswith('camvid'):
        if coarse_train:
            return [
                'python tools/dataset_converters/make_coarse_labels.py '
                '../shared/data/camvid/trainannot data/camvid_coarse/n12/trainannot '
                '--erode 12 --ignore-index 11 255'
            ]
        return ['../shared/data/camvid']
    if name.startswith('suim'):
        steps = ['python tools/dataset_converters/suim.py SUIM_ROOT data/suim']
        if coarse_train:
            steps.append('python tools/dataset_converters/make_coarse_labels.py '
                         'data/suim/ann_dir/train_val data/suim/ann_dir_coarse_n12/train_val '
                         '--erode 12')
        return steps
    return [
        'python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT '
        'data/cityscapes_1024x512'
    ]


@pytest.mark.parametrize('name', DATASET_CONFIGS)
def test_missing_data_names_what_is_missing_and_the_converter(name, tmp_path, monkeypatch):
    """Every data set, train / val / test dataloader, on a machine without the data."""
    monkeypatch.chdir(tmp_path)  # the configs' relative paths point at nothing here
    cfg = Config.fromfile(osp.join(CFG_DIR, f'{name}.py'))
    readme = _readme_data_section()
    for split in ('train', 'val', 'test'):
        with pytest.raises(FileNotFoundError) as err:
            build(cfg[f'{split}_dataloader'].dataset)
        msg = str(err.value)
        assert 'data not found' in msg and 'does not exist' in msg, msg
        assert 'Failed to load' not in msg
        # the first missing thing is named with the working directory it is relative to
        assert str(tmp_path) in msg
        for step in _expected_steps(name, split):
            assert step in msg, (split, msg)
            assert step in readme, f'README Data section lacks {step!r}'
        if len(_expected_steps(name, split)) == 2:  # steps in the order they must run
            first, second = _expected_steps(name, split)
            assert msg.index(first) < msg.index(second)


def test_missing_label_folder_split_file_and_empty_folder(tmp_path):
    """Images present, coarse labels not made yet; a split file missing; an empty folder."""
    img_dir = tmp_path / 'train'
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    cfg = Config.fromfile(osp.join(CFG_DIR, 'camvid_coarse.py'))
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    ds.data_prefix = dict(img_path=str(img_dir), seg_map_path=str(tmp_path / 'n12/trainannot'))
    with pytest.raises(FileNotFoundError) as err:
        build(ds)
    msg = str(err.value)
    assert f"label folder '{tmp_path}/n12/trainannot' (data_prefix.seg_map_path) does not " \
        'exist' in msg
    assert 'image folder' not in msg  # it exists
    assert 'make_coarse_labels.py ../shared/data/camvid/trainannot' in msg
    # the same folder with its labels loads
    (tmp_path / 'n12/trainannot').mkdir(parents=True)
    assert len(build(ds)) == 1
    # an empty image folder is an error too (mmseg: an empty data set that fails later)
    os.remove(img_dir / 'a.png')
    with pytest.raises(FileNotFoundError, match=r"has no image ending in '\.png'"):
        build(ds)
    # SUIM: data root present, split file missing
    suim = Config.fromfile(osp.join(CFG_DIR, 'suim.py')).val_dataloader.dataset
    (tmp_path / 'suim/img_dir/train_val').mkdir(parents=True)
    (tmp_path / 'suim/ann_dir/train_val').mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        build(suim, data_root=str(tmp_path / 'suim'))
    assert f"split file '{tmp_path}/suim/splits/val.txt' (ann_file) does not exist" in \
        str(err.value)
    (tmp_path / 'suim/splits').mkdir()
    (tmp_path / 'suim/splits/val.txt').write_text('')
    with pytest.raises(FileNotFoundError, match='lists no image'):
        build(suim, data_root=str(tmp_path / 'suim'))
    with pytest.raises(ValueError, match='prepare_hint must be'):
        build(suim, data_root=str(tmp_path / 'suim'), prepare_hint=[])


def test_headline_train_command_without_cityscapes(tmp_path):
    """`python tools/train.py configs/hcfcn_r34_cityscapes_coarse.py` where there is no data."""
    from conftest import run_tool
    with pytest.raises(AssertionError) as err:  # run_tool: the command failed
        run_tool([
            osp.join(ROOT, 'tools', 'train.py'),
            osp.join(ROOT, 'configs', 'hcfcn_r34_cityscapes_coarse.py'), '--work-dir',
            str(tmp_path / 'work')
        ],
                 cwd=str(tmp_path),
                 timeout=300)
    out = str(err.value)
    assert 'FileNotFoundError: SpixCityscapesDataset: data not found' in out, out[-3000:]
    assert "data root 'data/cityscapes_1024x512/' (data_root) does not exist" in out
    assert 'python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT ' \
        'data/cityscapes_1024x512' in out
    assert 'Failed to load `ann_file`' not in out


def test_annotation_steps_pass_a_bare_image():
    """What mmseg's inference APIs feed the test pipeline: an image without seg_map_path."""
    from mmseg_spixreg.datasets import CheckSegLabels, LoadSegAnnotations
    bare = dict(img=np.zeros((4, 6, 3), np.uint8), img_shape=(4, 6), ori_shape=(4, 6))
    assert LoadSegAnnotations()(dict(bare)).keys() == bare.keys()
    assert CheckSegLabels(num_classes=3, check_size=True)(dict(bare)).keys() == bare.keys()
    # with a label file, a CheckSegLabels placed before the loader is still an error
    with pytest.raises(ValueError, match='put it after'):
        CheckSegLabels(num_classes=3)(dict(bare, seg_map_path='/x/label.png'))
