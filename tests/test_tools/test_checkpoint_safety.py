# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Malicious checkpoints through the tools: ``tools/train.py`` with ``load_from``, ``--resume``
(last_checkpoint, and a checkpoint whose stored config text is the payload), ``init_cfg``
Pretrained, ``tools/test.py`` with a local file and with an ``https://`` URL (served from
torch.hub's cache under TORCH_HOME, nothing downloaded). Each is refused (or, for the stored config,
not executed) and the payload's marker file does not exist; with the opt-in
``MMSEG_SPIXREG_TRUST_CHECKPOINTS=1`` the same payloads do run.

The loader itself, the URL schemes, init_model and MMSegInferencer:
tests/test_utils/test_checkpoint.py.
"""
import os
import os.path as osp
import subprocess
import sys
from collections import Counter, OrderedDict

import pytest
import torch

from tests.utils import DEMO_CFG, REPO_ROOT, ShadowedMethods, config_text_payload, evil_checkpoint

TRUST = 'MMSEG_SPIXREG_TRUST_CHECKPOINTS'
URL = 'https://example.invalid/checkpoints/hcfcn-evil-0123abcd.pth'


def _opts(root):
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=1', 'train_cfg.val_interval=10',
        'model.data_preprocessor.size=(64,64)'
    ]


def _run(args, trusted=False, torch_home=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '2')
    env.pop(TRUST, None)
    if trusted:
        env[TRUST] = '1'
    if torch_home:
        env['TORCH_HOME'] = torch_home
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize('entry', ['load_from', 'resume', 'test.py', 'Pretrained', 'test.py-url'])
def test_malicious_checkpoint_is_refused_by_every_entry_point(entry, tmp_path, synthetic_root):
    evil, marker = evil_checkpoint(tmp_path)
    work = str(tmp_path / 'work')
    train = ['tools/train.py', DEMO_CFG, '--work-dir', work]
    opts = ['--cfg-options'] + _opts(synthetic_root)
    source, torch_home = evil, None
    if entry == 'load_from':
        args = train + opts + [f'load_from={evil}']
    elif entry == 'resume':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(evil)
        args = train + ['--resume'] + opts
    elif entry == 'test.py':
        args = ['tools/test.py', DEMO_CFG, evil, '--work-dir', work] + opts
    elif entry == 'test.py-url':
        # the file torch.hub would have downloaded: no network needed
        torch_home = str(tmp_path / 'torch_home')
        cached = osp.join(torch_home, 'hub', 'checkpoints', osp.basename(URL))
        os.makedirs(osp.dirname(cached))
        os.replace(evil, cached)
        source = URL
        args = ['tools/test.py', DEMO_CFG, URL, '--work-dir', work] + opts
    else:
        # the demo config has init_cfg=None (random init): replace it
        args = train + opts + [
            'model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={evil}'
        ]
    rc, log = _run(args, torch_home=torch_home)
    assert rc != 0, f'{entry} accepted a malicious checkpoint:\n{log[-3000:]}'
    assert f'refused to load checkpoint {source}' in log, log[-3000:]
    assert 'offending global(s): builtins.exec' in log, log[-3000:]
    assert f'{TRUST}=1' in log
    assert not osp.exists(marker), 'the checkpoint ran code while being loaded'


def test_opt_in_runs_the_payload_through_load_from(tmp_path, synthetic_root):
    """Positive control: the payload above is live (the trusted file is unpickled)."""
    evil, marker = evil_checkpoint(tmp_path)
    args = ['tools/train.py', DEMO_CFG, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options'
            ] + _opts(synthetic_root) + [f'load_from={evil}']
    rc, log = _run(args, trusted=True)
    assert osp.exists(marker), log[-3000:]


@pytest.mark.parametrize('trusted', [False, True], ids=['default', 'opt-in'])
def test_resume_does_not_execute_the_stored_config(trusted, tmp_path, synthetic_root):
    """A checkpoint of plain dicts and strings (it passes any allow-list) whose meta['config'] is
    Python text: mmengine's Runner.resume executes it (Config.fromstring). By default the run
    resumes without executing it; with the opt-in (a trusted file) mmengine does."""
    marker = str(tmp_path / 'pwned.txt')
    ckpt = str(tmp_path / 'plain.pth')
    torch.save(
        {
            'state_dict': OrderedDict(),
            'meta': {
                'epoch': 0,
                'iter': 0,
                'config': config_text_payload(marker)
            },
            'message_hub': {
                'log_scalars': {},
                'runtime_info': {},
                'resumed_keys': {}
            }
        }, ckpt)
    args = [
        'tools/train.py', DEMO_CFG, '--work-dir',
        str(tmp_path / 'work'), '--resume', '--cfg-options'
    ] + _opts(synthetic_root) + [f'load_from={ckpt}']
    rc, log = _run(args, trusted=trusted)
    assert osp.exists(marker) == trusted, log[-3000:]
    if not trusted:
        assert rc == 0 and 'resumed epoch: 0, iter: 0' in log, log[-3000:]


@pytest.mark.parametrize('trusted', [False, True], ids=['default', 'opt-in'])
@pytest.mark.parametrize('route', ['OrderedDict', 'Counter', 'last_checkpoint'])
def test_resume_with_shadowed_pop_does_not_execute_the_stored_config(route, trusted, tmp_path,
                                                                     synthetic_root):
    """Attack: ``meta`` is an OrderedDict (or a Counter) whose ``pop`` is ``builtins.set``, so a
    loader that takes the config text out with ``meta.pop('config')`` leaves it where
    ``Runner.resume`` reads it (``meta['config']``). ``--resume`` with ``load_from``, or through
    the work_dir's ``last_checkpoint``: refused, nothing executed; with the opt-in (a trusted
    file) mmengine executes the text."""
    marker = str(tmp_path / 'pwned.txt')
    ckpt = str(tmp_path / 'shadowed.pth')
    items = {'epoch': 0, 'iter': 0, 'config': config_text_payload(marker)}
    meta = ShadowedMethods(Counter if route == 'Counter' else OrderedDict, items, 'pop')
    hub = {'log_scalars': {}, 'runtime_info': {}, 'resumed_keys': {}}
    torch.save({'state_dict': OrderedDict(), 'meta': meta, 'message_hub': hub}, ckpt)
    work = str(tmp_path / 'work')
    args = ['tools/train.py', DEMO_CFG, '--work-dir', work, '--resume', '--cfg-options'
            ] + _opts(synthetic_root)
    if route == 'last_checkpoint':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)
    else:
        args.append(f'load_from={ckpt}')
    rc, log = _run(args, trusted=trusted)
    assert osp.exists(marker) == trusted, log[-3000:]
    if not trusted:
        assert rc != 0 and f'refused to load checkpoint {ckpt}' in log, log[-3000:]
        kind = 'Counter' if route == 'Counter' else 'OrderedDict'
        assert f"collections.{kind} carrying instance attributes 'pop'" in log, log[-3000:]
