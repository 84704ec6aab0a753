# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""What every config's loaders really run, checked on the *merged* config.

A leaf config that writes ``dict(val_dataloader, dataset=dict(indices=...))`` replaces the whole
``dataset`` dict (pipeline included) before mmengine merges it over the base: its loaders then
run the base's pipeline while ``cfg.test_pipeline`` (what ``inference_model`` runs) says
otherwise. These tests make that visible for every config in ``configs/``:

* the train loader runs the config's ``train_pipeline``, the val and test loaders its
  ``test_pipeline``;
* the test input size (the test pipeline's ``Resize``, or none) is the one configs/README.md
  states for the config ("Test input" column or line) and, for the configs whose results
  README.md reports, the one README's Results names;
* README's Results list every CamVid CPU config and state what their merged configs do: one
  input size in training, validation and testing, labels loaded after the resize (metrics at the
  labels' resolution), the validation and held-out test frames;
* for the CamVid CPU configs, ``inference_model`` and ``tools/test.py`` give the same prediction
  on one real frame (both from one checkpoint).
"""
import glob
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.utils import REPO_ROOT, run_tool, save_random_checkpoint

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
# every config of the repository except the _base_ fragments (top level and sub-folders)
NAMES = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if not osp.relpath(p, CONFIG_DIR).startswith('_base_'))
# the configs of the CPU-scale CamVid campaign (README "Results")
CPU_CONFIGS = sorted(n for n in NAMES if n.startswith('camvid_cpu/') and 'schedule' not in n)


def load(name):
    init_default_scope('mmseg')
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def datasets_of(dataset):
    """The leaf data sets of a loader's ``dataset`` (a ConcatDataset / RepeatDataset's parts)."""
    if 'datasets' in dataset:
        return [leaf for d in dataset['datasets'] for leaf in datasets_of(d)]
    if 'dataset' in dataset:
        return datasets_of(dataset['dataset'])
    return [dataset]


def resize_scale(pipeline):
    """(W, H) of the pipeline's ``Resize`` (mmcv's ``scale`` order), or None without one."""
    scales = [tuple(t['scale']) for t in pipeline if t['type'] == 'Resize']
    assert len(scales) <= 1, f'more than one Resize in {pipeline}'
    return scales[0] if scales else None


def readme_results():
    """The "Results" section of README.md."""
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    return readme.split('\n## Results\n', 1)[1].split('\n## ', 1)[0]


def documented_test_input(name):
    """What configs/README.md says of ``name``'s test input: the "Test input" cell of its table
    row where the table has that column, else the "Test input: ..." line of its section."""
    text = open(osp.join(CONFIG_DIR, 'README.md')).read()
    for section in re.split(r'\n(?=### )', text):
        if f']({name})' in section:
            rows = [ln for ln in section.splitlines() if ln.startswith('|')]
            header = [c.strip() for c in rows[0].strip('|').split('|')]
            if 'Test input' in header:
                row = next(ln for ln in rows if f']({name})' in ln)
                return row.strip('|').split('|')[header.index('Test input')].strip()
            lines = [ln for ln in section.splitlines() if ln.startswith('Test input:')]
            assert len(lines) == 1, (f'configs/README.md: the section that lists {name} needs '
                                     f'exactly one "Test input:" line, found {len(lines)}')
            return lines[0]
    pytest.fail(f'configs/README.md has no table row linking [config]({name})')


@pytest.mark.parametrize('name', NAMES)
def test_loaders_run_the_configs_pipelines(name):
    cfg = load(name)
    if 'test_pipeline' not in cfg:
        pytest.skip(f'{name} defines no pipelines')
    for loader, pipeline in (('train_dataloader', 'train_pipeline'),
                             ('val_dataloader', 'test_pipeline'), ('test_dataloader',
                                                                   'test_pipeline')):
        for ds in datasets_of(cfg[loader].dataset):
            assert ds.pipeline == cfg[pipeline], (
                f'{name}: {loader} does not run the config\'s {pipeline} (merged config):\n'
                f'  loader:   {ds.pipeline}\n  {pipeline}: {cfg[pipeline]}')


@pytest.mark.parametrize('name', [n for n in NAMES if 'schedule' not in n])
def test_test_input_size_is_the_documented_one(name):
    cfg = load(name)
    scale = resize_scale(cfg.test_pipeline)
    doc = documented_test_input(name)
    sizes = re.findall(r'(\d+)x(\d+)', doc)
    if scale is None:
        assert 'no resize' in doc, (f'{name} tests at the stored size (no Resize in its '
                                    f'test_pipeline), configs/README.md says: {doc!r}')
        return
    w, h = scale
    assert sizes and tuple(map(int, sizes[0])) == (w, h), (
        f'{name} tests at {w}x{h} (Resize in its test_pipeline), configs/README.md says: {doc!r}')
    results = readme_results()
    if osp.splitext(osp.basename(name))[0] in results:
        assert f'{w}x{h}' in results, (
            f"README.md's Results name {name} but not its test input {w}x{h}")


def frames(indices):
    """``'first..last'`` of a contiguous list of frame indices."""
    assert indices == list(range(indices[0], indices[-1] + 1)), indices
    return f'{indices[0]}..{indices[-1]}'


@pytest.mark.parametrize('name', CPU_CONFIGS)
def test_readme_results_state_what_the_cpu_configs_do(name):
    """README's Results against the merged config: listed, input size, label loading, frames."""
    results = readme_results()
    assert osp.splitext(name)[0] in results, f"README.md's Results do not list {name}"
    cfg = load(name)
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    scales = {resize_scale(cfg[loader].dataset.pipeline) for loader in loaders}
    assert len(scales) == 1 and None not in scales, (
        f'{name}: README says one input size in training, validation and testing; the loaders '
        f'resize to {scales}')
    w, h = scales.pop()
    assert f'{w}x{h} network input' in results, (
        f"{name} resizes to {w}x{h}; README.md's Results do not say so")
    for loader in loaders[1:]:
        steps = [t['type'] for t in cfg[loader].dataset.pipeline]
        # labels loaded after the resize: metrics at the labels' own resolution
        assert steps.index('LoadSegAnnotations') > steps.index('Resize'), (name, loader)
    val, test = cfg.val_dataloader.dataset.indices, cfg.test_dataloader.dataset.indices
    assert not set(val) & set(test), f'{name}: the held-out test frames overlap validation'
    assert f'val frames {frames(val)}' in results, (name, frames(val))
    assert f'held-out val frames {frames(test)}' in results, (name, frames(test))


@pytest.mark.parametrize('name', CPU_CONFIGS)
def test_inference_model_and_tools_test_agree(name, camvid_root, tmp_path):
    """One checkpoint, one held-out frame: ``tools/test.py --out`` writes the prediction the
    test loader gives, ``inference_model`` computes it from ``cfg.test_pipeline``."""
    from mmseg.apis import inference_model, init_model

    from mmseg_spixreg.datasets import CamVidDataset
    config = osp.join(CONFIG_DIR, name)
    ckpt = str(tmp_path / 'random.pth')
    save_random_checkpoint(config, ckpt, dict(CamVidDataset.METAINFO))
    frame = 50  # the first test frame
    img = sorted(glob.glob(osp.join(camvid_root, 'val', '*.png')))[frame]
    out = tmp_path / 'out'
    run_tool([
        'tools/test.py', config, ckpt, '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out), '--cfg-options', f'test_dataloader.dataset.indices=[{frame}]'
    ],
             env={'OMP_NUM_THREADS': '1'})
    by_test = cv2.imread(str(out / osp.basename(img)), cv2.IMREAD_UNCHANGED)
    assert by_test is not None, f'tools/test.py --out wrote no {osp.basename(img)} in {out}'

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = init_model(config, ckpt, device='cpu')
        by_api = inference_model(model, img).pred_sem_seg.data[0].numpy()
    finally:
        torch.set_num_threads(threads)
    assert by_test.shape == by_api.shape == (360, 480)
    agree = float(np.mean(by_test == by_api))
    assert agree == 1.0, f'{name}: tools/test.py and inference_model agree on {agree:.1%} of pixels'
