# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The README's onnxruntime snippet, as written, in a fresh virtualenv that has only numpy and
onnxruntime (no torch, no mmcv), on a model exported by tools/deployment/pytorch2onnx.py with
the README's command; its predictions equal PyTorch's."""
import os
import os.path as osp
import re
import shutil
import subprocess

import mmcv
import numpy as np
import pytest

from mmseg_spixreg.deployment import pytorch_predictions
from tests.test_deployment.deploy_utils import random_checkpoint
from tests.utils import REPO_ROOT, SHARED_CAMVID_ROOT, generated_image, run_tool

pytest.importorskip('onnxruntime', reason='requirements/deploy.txt not installed')
pytest.importorskip('onnxscript', reason='requirements/deploy.txt not installed')

CONFIG = 'configs/camvid_cpu/hcfcn_r34_camvid_coarse_cpu.py'
# pip's words for "the registry cannot be reached"
UNREACHABLE = ('NewConnectionError', 'Temporary failure in name resolution', 'Could not fetch URL',
               'Network is unreachable', 'No matching distribution found', 'Max retries exceeded')


def readme_deploy():
    """The README's Deploy section: (export command, onnxruntime snippet)."""
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        text = f.read()
    section = text[text.index('## Deploy'):text.index('## Results')]
    bash = re.search(r'```bash\n(.*?)```', section, re.S).group(1)
    python = re.search(r'```python\n(.*?)```', section, re.S).group(1)
    return bash, python


def onnxruntime_pin():
    with open(osp.join(REPO_ROOT, 'requirements', 'deploy.txt')) as f:
        pins = [line.split('#')[0].strip() for line in f]
    return next(p for p in pins if p.startswith('onnxruntime=='))


def fresh_venv(root):
    """A virtualenv with numpy and onnxruntime only (pip, from the registry / pip's cache)."""
    python3 = shutil.which('python3')
    if python3 is None:
        pytest.skip('no python3 on PATH to create a virtualenv with')
    venv = str(root / 'venv')
    subprocess.run([python3, '-m', 'venv', venv], check=True, timeout=300)
    py = osp.join(venv, 'bin', 'python')
    proc = subprocess.run([py, '-m', 'pip', 'install', '-q', 'numpy',
                           onnxruntime_pin()],
                          capture_output=True,
                          text=True,
                          timeout=900)
    if proc.returncode != 0:
        if any(word in proc.stderr + proc.stdout for word in UNREACHABLE):
            pytest.skip('the package registry is unreachable, so no fresh virtualenv with '
                        f'onnxruntime can be made: {proc.stderr.strip()[-300:]}')
        raise AssertionError(f'pip install failed:\n{proc.stdout}\n{proc.stderr}')
    return py


def frame_rgb(h, w):
    """(h, w, 3) uint8 RGB: a CamVid val frame resized as the CPU configs' test pipeline does,
    or a generated image."""
    val = osp.join(SHARED_CAMVID_ROOT, 'val')
    files = sorted(os.listdir(val)) if osp.isdir(val) else []
    img = mmcv.imread(osp.join(val, files[0])) if files else generated_image(360, 480, 0)
    return mmcv.bgr2rgb(mmcv.imresize(img, (w, h)))


def test_readme_snippet_runs_in_a_fresh_venv(tmp_path):
    bash, snippet = readme_deploy()
    assert len(snippet.strip().splitlines()) <= 10
    assert 'torch' not in snippet and 'mmcv' not in snippet and 'mmseg' not in snippet
    # the README's export command, with a (random, non-trivial) checkpoint of the config
    command = ' '.join(line.rstrip('\\').split('#')[0] for line in bash.splitlines()).split()
    assert command[:3] == ['python', 'tools/deployment/pytorch2onnx.py', CONFIG]
    ckpt = str(tmp_path / 'model.pth')
    model = random_checkpoint(CONFIG, ckpt)
    # the README runs it from the repository root, writing the model there; here the tool and
    # the config are given with absolute paths and the model is written into tmp_path
    args = [ckpt if a == 'CHECKPOINT' else a for a in command[1:]]
    args[:2] = [osp.join(REPO_ROOT, a) for a in args[:2]]
    out = args[args.index('--out') + 1]
    h, w = (int(v) for v in args[args.index('--shape') + 1:args.index('--shape') + 3])
    run_tool(args, cwd=str(tmp_path), env={'OMP_NUM_THREADS': '1'})
    image = frame_rgb(h, w)
    np.save(tmp_path / 'frame.npy', image)
    py = fresh_venv(tmp_path)
    probe = subprocess.run([py, '-c', 'import torch'], capture_output=True)
    assert probe.returncode != 0, 'the fresh virtualenv must not have torch'
    script = tmp_path / 'snippet.py'
    script.write_text(snippet + "np.save('labels.npy', labels)\n"
                      "np.save('superpixels.npy', superpixels)\n")
    proc = subprocess.run([py, str(script)],
                          cwd=str(tmp_path),
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert osp.isfile(tmp_path / out)
    ref = pytorch_predictions(model.eval(), image.transpose(2, 0, 1).astype(np.float32), 'RGB')
    labels = np.load(tmp_path / 'labels.npy')
    superpixels = np.load(tmp_path / 'superpixels.npy')
    assert labels.shape == (h, w)
    assert (labels == ref['logits'].argmax(0)).mean() >= 0.999
    assert np.array_equal(superpixels.reshape(h, w), ref['superpixels'])
