# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""RNGStateHook: the torch RNG stream is saved in checkpoints and restored on resume (the exact
resume of a whole training run: tests/test_tools/test_train.py)."""
import pytest
import torch


def _rng_hook_roundtrip(map_location):
    """Save the RNG state through RNGStateHook into a checkpoint, load it back with
    ``map_location`` (as mmengine's resume does), restore it and return (numbers drawn after the
    save, numbers drawn after the restore)."""
    import io
    from types import SimpleNamespace

    from mmseg_spixreg.engine.hooks import RNGStateHook
    hook, ckpt = RNGStateHook(), {}
    torch.manual_seed(3)
    hook.before_save_checkpoint(None, ckpt)
    expected = torch.rand(5)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    buf.seek(0)
    loaded = torch.load(buf, map_location=map_location, weights_only=True)
    torch.manual_seed(4)  # the resumed run starts from another state
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), loaded)
    hook.before_train_iter(None, 0)
    return expected, torch.rand(5)


def test_rng_state_hook_restores_the_saved_stream():
    expected, drawn = _rng_hook_roundtrip('cpu')
    torch.testing.assert_close(drawn, expected, rtol=0, atol=0)


def test_rng_state_hook_rejects_what_is_no_generator_state():
    from mmseg_spixreg.engine.hooks.rng_state_hook import cpu_rng_state
    with pytest.raises(TypeError, match='not a 1-D uint8 generator state'):
        cpu_rng_state(torch.zeros(4))
    with pytest.raises(TypeError, match='not a 1-D uint8 generator state'):
        cpu_rng_state([1, 2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device on this machine')
def test_rng_state_hook_restores_a_state_mapped_to_cuda():
    """--resume on a GPU: mmengine maps the checkpoint to CUDA; torch only takes CPU states
    (before the fix: 'RNG state must be a torch.ByteTensor', seen on an H100)."""
    expected, drawn = _rng_hook_roundtrip('cuda')
    torch.testing.assert_close(drawn, expected, rtol=0, atol=0)
