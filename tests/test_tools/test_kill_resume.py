# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""SIGKILL while a checkpoint is saved, then --resume: the same weights as an uninterrupted run.

One training run (regularized HCFCN-16, generated data, CPU, 6 iterations, a checkpoint every 2,
``max_keep_ckpts=1`` from the config) is killed three times, each time while it saves its
iter-4 checkpoint, at a different point of the save (AtomicCheckpointHook: write temporary file
-> rename -> replace last_checkpoint -> delete the outdated checkpoint):

1. from outside (``SIGKILL`` sent by this test) while ``.iter_4.pth.*.tmp`` is being written
   (the child's fsync of it is slowed down so that the kill lands inside the save);
2. inside the child with the temporary file truncated to half its size (a kill in the middle of
   the write);
3. after the new checkpoint is renamed into place, before ``last_checkpoint`` is replaced
   (mmengine's CheckpointHook has already deleted iter_2 there: nothing left to resume from).

After every kill ``last_checkpoint`` names a complete checkpoint, and the run resumed after the
last kill ends bit-exactly with the weights of an uninterrupted run.
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

from tests.test_tools.test_train import assert_equals_uninterrupted_run
from tests.utils import DEMO_CFG, REPO_ROOT, demo_train_options, run_tool

# Runs tools/train.py in this process after patching os.replace / os.fsync to die at one point
# of the N-th checkpoint save (fault injection for the test only).
KILL_DRIVER = textwrap.dedent('''
    import os, runpy, signal, sys, time
    point, nth = sys.argv[1], int(sys.argv[2])
    sys.argv = sys.argv[3:]
    real_replace, real_fsync = os.replace, os.fsync
    seen = {'n': 0}

    def hit(path, suffix):
        name = os.path.basename(str(path))
        # the checkpoint temporary files are .<name>.pth.<random>.tmp
        found = ('.pth.' in name and name.endswith('.tmp')) if suffix == 'tmp' else \
            name.endswith(suffix)
        if not found:
            return False
        seen['n'] += 1
        return seen['n'] == nth

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def fsync(fd):
        if point == 'slow' and hit(os.readlink(f'/proc/self/fd/{fd}'), 'tmp'):
            print('KILL-DRIVER: slow save', flush=True)
            time.sleep(600)  # the test kills us meanwhile
        return real_fsync(fd)

    def replace(src, dst):
        if point == 'mid_write' and hit(dst, '.pth'):
            with open(src, 'r+b') as f:
                f.truncate(os.path.getsize(src) // 2)
            die()
        if point == 'before_pointer' and hit(dst, 'last_checkpoint'):
            die()
        real_replace(src, dst)

    os.replace, os.fsync = replace, fsync
    sys.path.insert(0, 'tools')  # as `python tools/train.py` does (tools/runner_setup.py)
    runpy.run_path('tools/train.py', run_name='__main__')
''')


def _env():
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


def _killed_run(driver, point, nth, args):
    """Run the driver; return its output after it died of SIGKILL (fail otherwise)."""
    cmd = [sys.executable, driver, point, str(nth), 'tools/train.py'] + args
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, (
        f'{point}: expected death by SIGKILL, got {proc.returncode}\n{proc.stderr[-3000:]}')
    return proc.stdout + proc.stderr


def _external_kill_during_save(driver, work, args):
    """Start training, SIGKILL it from outside once .iter_4.pth.*.tmp exists (2nd save)."""
    cmd = [sys.executable, driver, 'slow', '2', 'tools/train.py'] + args
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.time() + 600
        while not _temporary_files(work):
            assert proc.poll() is None, f'training ended before the save: {proc.stderr.read()}'
            assert time.time() < deadline, 'the save of iter_4 never started'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _temporary_files(work):
    """The temporary files of iter_4's save (unique names, one per attempt)."""
    return glob.glob(osp.join(work, '.iter_4.pth.*.tmp'))


def _resume_point(work):
    """The checkpoint --resume would load: it must exist and be complete; returns its iter."""
    with open(osp.join(work, 'last_checkpoint')) as f:
        path = f.read().strip()
    from mmseg_spixreg.utils import load_from_local_safe
    ckpt = load_from_local_safe(path, map_location='cpu')
    return ckpt['meta']['iter']


def test_sigkill_during_checkpoint_saves_then_resume_is_exact(tmp_path, synthetic_root):
    driver = str(tmp_path / 'kill_driver.py')
    with open(driver, 'w') as f:
        f.write(KILL_DRIVER)
    work = str(tmp_path / 'killed')
    opts = ['--cfg-options'] + demo_train_options(synthetic_root, 6)
    first = [DEMO_CFG, '--work-dir', work] + opts
    resume = [DEMO_CFG, '--work-dir', work, '--resume'] + opts

    # 1. external SIGKILL while iter_4 is being saved: iter_2 stays the resume point
    _external_kill_during_save(driver, work, first)
    assert len(_temporary_files(work)) == 1 and not osp.exists(osp.join(work, 'iter_4.pth'))
    assert _resume_point(work) == 2

    # 2. killed in the middle of writing iter_4 (the temporary file is truncated)
    log = _killed_run(driver, 'mid_write', 1, resume)
    assert 'resumed epoch: 0, iter: 2' in log, log[-3000:]
    tmps = _temporary_files(work)
    assert len(tmps) == 2 and all(osp.getsize(t) > 0 for t in tmps)
    assert not osp.exists(osp.join(work, 'iter_4.pth'))
    assert _resume_point(work) == 2

    # 3. killed after iter_4.pth is in place, before last_checkpoint moves to it: iter_2 must
    #    still exist (mmengine's own hook deletes it before saving iter_4 with max_keep_ckpts=1)
    _killed_run(driver, 'before_pointer', 1, resume)
    assert osp.isfile(osp.join(work, 'iter_4.pth')) and osp.isfile(osp.join(work, 'iter_2.pth'))
    assert _resume_point(work) == 2

    # resume to the end, and an uninterrupted run with the same seed
    proc = run_tool(['tools/train.py'] + resume)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    # max_keep_ckpts=1: the outdated checkpoints were deleted once iter_6 was in place
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_6.pth']
    assert_equals_uninterrupted_run(osp.join(work, 'iter_6.pth'), tmp_path, synthetic_root, 6)
