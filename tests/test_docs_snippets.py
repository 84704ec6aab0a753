# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The inference snippets of README.md and docs/inference.md and the image-demo command run as
written, against a checkpoint trained here the way the docs say.

In a fresh folder laid out like the repository root (``configs/`` and ``demo/`` linked, a small
CamVid-shaped data set in ``data/``: the real frame 0016E5_08101 where CamVid is present, a
generated one otherwise), ``tools/train.py configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py``
trains two iterations and keeps its best checkpoint where the config puts it; then each Python
snippet runs unchanged in a new interpreter (it finds that checkpoint through the file-name
pattern it gives), and the README's ``demo/image_demo.py`` command runs with ``CHECKPOINT``
replaced by that file. Every other Python block of the docs is run as written by the test named
in ``PYTHON_BLOCKS``.
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import shutil
import sys

import cv2
import numpy as np
import pytest

from tests.utils import CAMVID_ROOT, REPO_ROOT, generated_image, run_tool

CONFIG = 'configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py'
FRAME = '0016E5_08101.png'
# a short run of the documented training command: 2 iterations, validation on the 2 val images
TRAIN_OPTIONS = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
    'train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=[0,1]'
]

# every Python block of the docs (document, section): the test that runs it as written
PYTHON_BLOCKS = {
    ('README.md', '### Inference'): 'tests/test_docs_snippets.py',
    ('docs/inference.md', None): 'tests/test_docs_snippets.py',
    ('README.md', '### Using the plug-in from your own mmseg config'): 'tests/test_own_configs.py',
    ('README.md', '## Deploy'): 'tests/test_deployment/test_fresh_venv.py',
}

# run after a snippet, in its namespace: what it computed (shapes, files)
REPORT = """
import json as _json
_report = dict(checkpoint=checkpoint, pred=list(result.pred_sem_seg.data.shape),
               logits=list(result.seg_logits.data.shape),
               spix=list(result.pred_superpixels.data.shape),
               predictions=[list(p.shape) for p in out['predictions']])
print('REPORT ' + _json.dumps(_report))
"""


def blocks(doc, language, section=None):
    """The fenced code blocks of ``language`` in ``doc`` (after heading ``section``)."""
    with open(osp.join(REPO_ROOT, doc), encoding='utf-8') as f:
        text = f.read()
    if section is not None:
        text = text[text.index(section):]
        text = re.split(r'\n#{1,3} ', text[len(section):])[0]
    return re.findall(r'```' + language + r'\n(.*?)```', text, flags=re.S)


def make_camvid(root):
    """data/camvid (2 train, 2 val frames at 480x360, 11 classes + void) and its coarse labels."""
    rng = np.random.default_rng(0)
    for split, names in (('train', ['0001TP_006690.png',
                                    '0001TP_006720.png']), ('val', [FRAME, '0016E5_08103.png'])):
        os.makedirs(osp.join(root, 'data/camvid', split))
        os.makedirs(osp.join(root, 'data/camvid', split + 'annot'))
        os.makedirs(osp.join(root, 'data/camvid_coarse/n12', split + 'annot'), exist_ok=True)
        for i, name in enumerate(names):
            real = osp.join(CAMVID_ROOT, split, name)
            if osp.isfile(real):
                shutil.copy(real, osp.join(root, 'data/camvid', split, name))
            else:
                image = cv2.resize(generated_image(90, 120, seed=i), (480, 360))
                cv2.imwrite(osp.join(root, 'data/camvid', split, name), image)
            label = cv2.resize(
                rng.integers(0, 12, (9, 12)).astype(np.uint8), (480, 360),
                interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(osp.join(root, 'data/camvid', split + 'annot', name), label)
            coarse = label.copy()
            coarse[::7] = 11  # void, mapped to the ignore index by CamVidDataset
            cv2.imwrite(osp.join(root, 'data/camvid_coarse/n12', split + 'annot', name), coarse)


@pytest.fixture(scope='module')
def user_root(tmp_path_factory):
    """A folder laid out like the repository root, with the documented checkpoint trained."""
    root = str(tmp_path_factory.mktemp('user'))
    for name in ('configs', 'demo'):
        os.symlink(osp.join(REPO_ROOT, name), osp.join(root, name))
    make_camvid(root)
    run_tool(
        [osp.join(REPO_ROOT, 'tools/train.py'), CONFIG, '--cfg-options'] + TRAIN_OPTIONS, cwd=root)
    return root


def run_snippet(root, code, name):
    path = osp.join(root, name)
    with open(path, 'w') as f:
        f.write(code + REPORT)
    proc = run_tool([path], cwd=root)
    line = [x for x in proc.stdout.splitlines() if x.startswith('REPORT ')][-1]
    return json.loads(line[len('REPORT '):])


@pytest.mark.parametrize('doc', ['README.md', 'docs/inference.md'])
def test_inference_snippet_runs_as_written(user_root, doc):
    section = '### Inference' if doc == 'README.md' else None
    code = blocks(doc, 'python', section)[0]
    shutil.rmtree(osp.join(user_root, 'outputs'), ignore_errors=True)
    for path in ('overlay.png', 'tiles.png'):
        if osp.exists(osp.join(user_root, path)):
            os.remove(osp.join(user_root, path))
    report = run_snippet(user_root, code, 'snippet_' + doc.replace('/', '_') + '.py')
    # the checkpoint the docs' pattern finds is the one the config saved (best aAcc, iteration 2)
    assert report['checkpoint'] == 'work_dirs/hcfcn_r34_camvid_coarse_cpu/best_aAcc_iter_2.pth'
    assert report['pred'] == [1, 360, 480] and report['spix'] == [1, 360, 480]
    assert report['logits'] == [11, 360, 480]
    assert report['predictions'] == [[360, 480], [360, 480]]  # the 2 images of data/camvid/val
    overlay = cv2.imread(osp.join(user_root, 'overlay.png'))
    assert overlay.shape == (360, 480, 3)
    assert len(glob.glob(osp.join(user_root, 'outputs/vis/*.png'))) == 2
    assert len(glob.glob(osp.join(user_root, 'outputs/pred/*.png'))) == 2
    if doc == 'docs/inference.md':  # prediction overlay | superpixel tile
        assert cv2.imread(osp.join(user_root, 'tiles.png')).shape == (360, 960, 3)


def test_image_demo_command_runs_as_written(user_root):
    command = blocks('README.md', 'bash', '### Inference')[0]
    command = command.split('#')[0].replace('\\\n', ' ')
    args = shlex.split(command)
    assert args[:2] == ['python', 'demo/image_demo.py'] and 'CHECKPOINT' in args
    checkpoint = glob.glob(
        osp.join(user_root, 'work_dirs/hcfcn_r34_camvid_coarse_cpu/best_aAcc_iter_*.pth'))
    assert len(checkpoint) == 1
    args = [checkpoint[0] if a == 'CHECKPOINT' else a for a in args[1:]]
    out_file = osp.join(user_root, args[args.index('--out-file') + 1])
    if osp.exists(out_file):
        os.remove(out_file)
    run_tool(
        args,
        cwd=user_root,
        env=dict(PATH=osp.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')))
    drawn = cv2.imread(out_file)
    assert drawn.shape == (360, 960, 3)  # prediction overlay | superpixel tile


def test_every_python_block_of_the_docs_is_run():
    """A Python block added to README.md or docs/ outside the sections above runs nowhere."""
    docs = ['README.md'] + sorted(
        osp.relpath(p, REPO_ROOT) for p in glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
    found = {(doc, block) for doc in docs for block in blocks(doc, 'python')}
    run = set()
    for (doc, section), test in PYTHON_BLOCKS.items():
        assert osp.isfile(osp.join(REPO_ROOT, test)), test
        sections = blocks(doc, 'python', section)
        assert sections, f'{doc}: no Python block after {section!r}'
        run.update((doc, block) for block in sections)
    assert found == run, 'Python blocks no test runs:\n' + '\n'.join(
        f'{doc}:\n{block}' for doc, block in sorted(found - run))
