# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Helpers shared by the test modules (fixtures live in tests/conftest.py).

Test modules import them package-style, ``from tests.utils import run_tool``: ``tests`` and every
folder below it are packages, and pytest puts the repository root (the folder above ``tests``) on
``sys.path`` (``rootdir``-based imports, no ``sys.path`` edits here).
"""
import copy
import itertools
import json
import math
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.apis import init_model
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from link_camvid import link_camvid  # noqa: F401  (tools/dataset_converters; fixture camvid_root)
from mmseg_spixreg.ops import valid_seed_mask

# The repository root: every path of the repository in the tests is relative to it.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The real CamVid data where the configs read it (data/camvid; fixture ``camvid_root``), linked
# from the team's copy beside the repository (SHARED_CAMVID_ROOT) where there is one.
CAMVID_ROOT = osp.join(REPO_ROOT, 'data', 'camvid')
SHARED_CAMVID_ROOT = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'data', 'camvid'))
# configs/_base_/datasets, where the data set configs are.
DATASET_CFG_DIR = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets')

# The demo config trained for a few iterations on the generated data set (resume / kill tests)
DEMO_CFG = 'configs/demo/hcfcn_r34_synthetic_coarse.py'


def demo_train_options(root, iters):
    """``--cfg-options`` of a short deterministic CPU run of ``DEMO_CFG`` on ``root``.

    Args:
        root (str): The generated data set (``synthetic_root``).
        iters (int): Training iterations (checkpoint every 2).

    Returns:
        list[str]: ``key=value`` overrides.
    """
    opts = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    return opts + [
        'train_dataloader.dataset.data_prefix.seg_map_path=ann_dir/train',
        'train_dataloader.batch_size=2', f'train_cfg.max_iters={iters}',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
        'model.data_preprocessor.size=(64,64)', 'randomness.seed=3', 'randomness.deterministic=True'
    ]


def run_tool(args, cwd=REPO_ROOT, timeout=900, env=None):
    """Run a repository tool with this interpreter; fail with its output if it fails."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env['PYTHON'] = sys.executable
    full_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
    if env:
        full_env.update(env)
    cmd = args if args[0] in ('bash', ) else [sys.executable] + list(args)
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'command {cmd} failed with code {proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


# ----------------------------------------------------------------------------------------------
# the superpixel ops: slow loop references of the layout contract (tests/test_ops)


def in_map_seeds(y, x, h, w):
    """(j, sy, sx) of the in-map seeds of fine pixel (y, x), from the
    contract spelled out literally (not via the library's helpers)."""
    out = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sy, sx = y // 2 + dy, x // 2 + dx
            if 0 <= sy < h and 0 <= sx < w:
                out.append((3 * (dy + 1) + (dx + 1), sy, sx))
    return out


def ref_upsample(coarse, assign):
    B, C, h, w = coarse.shape
    out = torch.zeros(B, C, 2 * h, 2 * w, dtype=coarse.dtype)
    for b, y, x in itertools.product(range(B), range(2 * h), range(2 * w)):
        for j, sy, sx in in_map_seeds(y, x, h, w):
            out[b, :, y, x] += assign[b, j, y, x] * coarse[b, :, sy, sx]
    return out


def ref_downsample(fine, assign, eps=1e-8):
    B, C, H, W = fine.shape
    h, w = H // 2, W // 2
    num = torch.zeros(B, C, h, w, dtype=fine.dtype)
    den = torch.zeros(B, h, w, dtype=fine.dtype)
    for b, y, x in itertools.product(range(B), range(H), range(W)):
        for j, sy, sx in in_map_seeds(y, x, h, w):
            num[b, :, sy, sx] += assign[b, j, y, x] * fine[b, :, y, x]
            den[b, sy, sx] += assign[b, j, y, x]
    return num / (den[:, None] + eps)


def ref_reconstruct(x, assignments, eps=1e-8):
    feats = [x]
    for assign in assignments:
        feats.append(ref_downsample(feats[-1], assign, eps))
    out = feats[-1]
    for assign in reversed(assignments):
        out = ref_upsample(out, assign)
    return out


def ref_assignment(module, fine, coarse):
    """Eq. 1 pixel by pixel: project, cosine, / tau, softmax over valid."""
    wf = module.fine_proj.weight[:, :, 0, 0]
    wc = module.coarse_proj.weight[:, :, 0, 0]
    B, _, H, W = fine.shape
    h, w = H // 2, W // 2
    out = torch.zeros(B, 9, H, W, dtype=fine.dtype)
    for b, y, x in itertools.product(range(B), range(H), range(W)):
        pf = wf @ fine[b, :, y, x]
        seeds = in_map_seeds(y, x, h, w)
        logits = []
        for _, sy, sx in seeds:
            pc = wc @ coarse[b, :, sy, sx]
            cos = torch.dot(pf, pc) / (pf.norm() * pc.norm())
            logits.append(math.exp(cos.item() / module.tau))
        total = sum(logits)
        for (j, _, _), value in zip(seeds, logits):
            out[b, j, y, x] = value / total
    return out


def rand_assign(B, H, W, dtype=torch.float64, generator=None):
    """A random valid assignment (masked, rows sum to 1)."""
    logits = torch.randn(B, 9, H, W, dtype=dtype, generator=generator)
    logits = logits.masked_fill(~valid_seed_mask(H, W), float('-inf'))
    return logits.softmax(1)


def hard_assign(B, H, W, generator=None):
    """One-hot assignment on a random valid seed of every pixel."""
    scores = torch.rand(B, 9, H, W, dtype=torch.float64, generator=generator)
    scores = scores.masked_fill(~valid_seed_mask(H, W), -1)
    return F.one_hot(scores.argmax(1), 9).permute(0, 3, 1, 2).double()


# ----------------------------------------------------------------------------------------------
# models built from the configs with random weights, mmseg-style batches


def model_cfg(name, **changes):
    """``model`` of configs/<name>: random init, training batches padded to a multiple of 16."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    cfg.merge_from_dict({
        'model.backbone.init_cfg': None,
        'model.data_preprocessor.size': None,
        'model.data_preprocessor.size_divisor': 16,
        **changes
    })
    if cfg.model.get('pretrained'):
        cfg.model.pretrained = None
    return cfg.model


def build_model(name, seed=0, **changes):
    """The model of configs/<name> (see :func:`model_cfg`), initialised with seed ``seed``."""
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(name, **changes))
    model.init_weights()
    return model


def make_batch(b=2, h=64, w=64, num_classes=19, seed=0, labels=True, images=None):
    """mmseg-style data dict: uint8 BGR images + SegDataSamples."""
    g = torch.Generator().manual_seed(seed)
    if images is None:
        images = [
            torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for _ in range(b)
        ]
    samples = []
    for img in images:
        s = SegDataSample()
        hh, ww = img.shape[-2:]
        s.set_metainfo(dict(img_shape=(hh, ww), ori_shape=(hh, ww), pad_shape=(hh, ww)))
        if labels:
            s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, hh, ww), generator=g))
        samples.append(s)
    return dict(inputs=list(images), data_samples=samples)


def train_losses(model, batch):
    """(loss dict, total loss) of one training forward of ``batch`` (see :func:`make_batch`)."""
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    return losses, total


# ----------------------------------------------------------------------------------------------
# images, labels, data sets


def edge_map(h, w, col):
    """Two classes: 0 left of column ``col``, 1 from ``col`` on."""
    label = np.zeros((h, w), np.uint8)
    label[:, col:] = 1
    return label


# A palette of three classes (visualization tests)
PALETTE = [[128, 128, 128], [128, 0, 0], [192, 192, 128]]

# (height, width) of the main generated test image (fixture ``images``): not a multiple of 16
TEST_IMAGE_SIZE = (76, 100)


def blocky_label_maps(seed):
    """(gt, pred): 17x19 int label maps of random 3x3 / 2x2 blocks (so boundaries are neither
    everywhere nor nowhere), about 10 % of gt void (255)."""
    rng = np.random.RandomState(seed)
    gt = np.kron(rng.randint(0, 4, (6, 7)), np.ones((3, 3), int))[:17, :19]
    gt[rng.rand(*gt.shape) < 0.1] = 255
    pred = np.kron(rng.randint(0, 3, (9, 10)), np.ones((2, 2), int))[:17, :19]
    return gt, pred


def generated_image(h, w, seed):
    """A BGR image of a few coloured rectangles plus noise (uint8, h x w x 3)."""
    rng = np.random.RandomState(seed)
    img = np.zeros((h, w, 3), np.uint8)
    for _ in range(6):
        y, x = rng.randint(0, h - 8), rng.randint(0, w - 8)
        img[y:y + rng.randint(8, h), x:x + rng.randint(8, w)] = rng.randint(0, 256, 3)
    return np.clip(img + rng.randint(-20, 21, img.shape), 0, 255).astype(np.uint8)


def build_dataset(dataset_cfg, **overrides):
    """Build a data set config (a copy of it, with ``overrides``) from mmseg's registry."""
    cfg = copy.deepcopy(dataset_cfg)
    cfg.update(overrides)
    return DATASETS.build(cfg)


def build_synthetic_dataset(root, split='train', **kwargs):
    """The training data set of ``DEMO_CFG`` on the generated data at ``root`` (one split)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CFG))
    ds = cfg.train_dataloader.dataset
    ds.update(
        data_root=root,
        data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
        **kwargs)
    return DATASETS.build(ds)


# ----------------------------------------------------------------------------------------------
# inputs of the dataset converters (tools/dataset_converters)

SUIM_CODES = np.array([[0, 0, 0], [0, 0, 255], [0, 255, 0], [0, 255, 255], [255, 0, 0],
                       [255, 0, 255], [255, 255, 0], [255, 255, 255]], np.uint8)


def make_suim(root, n_train_val=8, n_test=3, size=(32, 24)):
    """Tiny SUIM-like tree; returns {(split, name): expected ids} and off-colour count."""
    rng = np.random.RandomState(0)
    expected, off = {}, 0
    for split, count in (('train_val', n_train_val), ('TEST', n_test)):
        os.makedirs(osp.join(root, split, 'images'))
        os.makedirs(osp.join(root, split, 'masks'))
        for i in range(count):
            name = f'{split.lower()}_{i:03d}'
            ids = np.kron(rng.randint(0, 8, (3, 4)), np.ones((8, 8), np.uint8))[:size[1], :size[0]]
            rgb = SUIM_CODES[ids].copy()
            # JPEG-like off-colours on a few pixels.
            rgb[0, 0] = np.where(rgb[0, 0] == 255, 252, 3)
            rgb[1, 1] = np.where(rgb[1, 1] == 255, 200, 40)
            off += 2
            image = rng.randint(0, 255, (size[1], size[0], 3), np.uint8)
            cv2.imwrite(osp.join(root, split, 'images', name + '.jpg'), image)
            cv2.imwrite(osp.join(root, split, 'masks', name + '.bmp'), rgb[..., ::-1])
            expected[(split, name)] = ids
    return expected, off


def make_cityscapes(root, size=(64, 32)):
    """Tiny Cityscapes-like tree (3 train, 1 val image); returns its (split, city, stem)."""
    w, h = size
    items = [('train', 'aachen', 'aachen_000000_000019'),
             ('train', 'bremen', 'bremen_000001_000019'),
             ('train', 'weimar', 'weimar_000002_000019'),
             ('val', 'frankfurt', 'frankfurt_000000_000294')]
    for split, city, stem in items:
        for sub in ('leftImg8bit', 'gtFine', 'gtCoarse'):
            os.makedirs(osp.join(root, sub, split, city), exist_ok=True)
        cv2.imwrite(
            osp.join(root, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'),
            np.full((h, w, 3), 100, np.uint8))
        fine = np.full((h, w), 7, np.uint8)  # road
        fine[:h // 2] = 23  # sky
        fine[:, :8] = 0  # unlabeled
        fine[h // 2:, w // 2:] = 26  # car
        cv2.imwrite(osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'), fine)
        if split == 'train':  # coarse only as polygons (tests the rasteriser)
            objects = [
                dict(
                    label='road',
                    polygon=[[0, h - 1], [w - 1, h - 1], [w - 1, h // 2], [0, h // 2]]),
                dict(
                    label='cargroup',
                    polygon=[[w // 2, h // 2], [w - 1, h // 2], [w - 1, h - 1], [w // 2, h - 1]]),
                dict(label='sky', polygon=[[0, 0], [10, 0], [10, 5], [0, 5]], deleted=1),
                dict(label='license plate', polygon=[[1, 1], [3, 1], [3, 3]]),
            ]
            with open(
                    osp.join(root, 'gtCoarse', split, city, f'{stem}_gtCoarse_polygons.json'),
                    'w') as f:
                json.dump(dict(imgHeight=h, imgWidth=w, objects=objects), f)
    return items


# ----------------------------------------------------------------------------------------------
# checkpoints


def save_random_checkpoint(config, path, dataset_meta, device='cpu'):
    """Build the config's model with random weights and save it like mmengine's CheckpointHook."""
    torch.manual_seed(0)
    model = init_model(config, None, device=device)
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': dataset_meta}}, path)


class WritesMarkerViaExec:
    """Unpickling it runs ``exec`` that creates ``marker`` (a code-execution payload)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('unpickled')", )


class WritesMarkerViaTofile:
    """Unpickling it calls ``numpy.ndarray.tofile`` (pickled as ``builtins.getattr(ndarray,
    'tofile')``): numpy types are allowed, so this probes the restricted getattr stand-in."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return np.ndarray.tofile, (np.zeros(2), self.marker)


class NdarrayFromBytes:
    """Unpickling it calls ``numpy.ndarray(shape, dtype, buffer)`` directly (an array over
    attacker bytes; with offsets / strides it reads memory outside them)."""

    def __init__(self, marker=None):
        pass

    def __reduce__(self):
        return np.ndarray, ((2, ), np.dtype('f8'), b'\x00' * 16)


class ObjectFieldDtype:
    """Unpickling it builds a structured dtype with an object field (``numpy.dtype('V8')`` whose
    state adds the field): an array of it turns 8 stored bytes into a PyObject pointer."""

    def __init__(self, marker=None):
        pass

    def __reduce__(self):
        return np.dtype, ('V8', False, True), (3, '|', None, ('a', ), {
            'a': (np.dtype('O'), 0)
        }, 8, 1, 63)


def history_buffer_method_swap(marker=None):
    """A mmengine HistoryBuffer whose pickled statistics methods map ``mean`` to ``min``:
    ``HistoryBuffer.__setstate__`` would install that for every buffer in the process."""
    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer([1.0, 3.0], [1, 1], max_length=10)
    buf._statistics_methods = {'mean': HistoryBuffer.min}  # what __getstate__ pickles
    return buf


def config_text_payload(marker):
    """Config text (what mmengine stores in ``meta['cfg']``) that creates ``marker`` when
    executed, plus a valid config body."""
    return (f"open({marker!r}, 'w').write('executed')\n"
            "gpu_ids = [0]\nmodel = dict(type='EncoderDecoder')\n")


class ShadowedMethods:
    """Pickles as a ``kind`` (``OrderedDict`` or ``Counter``) holding ``items`` whose instance
    attribute ``name`` is ``builtins.set`` (every global here is on torch's weights-only
    allow-list): ``obj.name(key)`` then returns ``set(key)`` instead of calling the method, while
    ``obj[key]`` / ``key in obj`` still see the items.

    Args:
        kind (type): ``collections.OrderedDict`` or ``collections.Counter``.
        items (dict): The mapping's items.
        name (str): The method to shadow (``'get'``, ``'pop'``).
        via (str): ``'build'``: pickle's BUILD sets the attribute (torch updates the
            instance ``__dict__``); ``'rebuild_from_type'``:
            ``torch._tensor._rebuild_from_type_v2(kind, kind, (), {name: set})`` does.
    """

    def __init__(self, kind, items, name, via='build'):
        self.kind, self.items, self.name, self.via = kind, items, name, via

    def __reduce__(self):
        if self.via == 'build':
            return self.kind, (), {self.name: set}, None, iter(self.items.items())
        return (torch._tensor._rebuild_from_type_v2, (self.kind, self.kind, (), {
            self.name: set
        }), None, None, iter(self.items.items()))


class HugeArrayShape:
    """A pickled numpy array whose shape is ``(2**70, )`` (numpy's own product overflows)."""

    def __init__(self, marker=None):
        pass

    def __reduce__(self):
        reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct (1.x or 2.x name)
        return (reconstruct, (np.ndarray, (0, ), b'b'), (1, (2**70, ), np.dtype('f4'), False, b''))


class ArrayInSet:
    """``set([array])``: hashable while unpickled (a stand-in), an unhashable array after."""

    def __init__(self, marker=None):
        pass

    def __reduce__(self):
        return set, ([np.zeros(2)], )


class NewobjDtype:
    """A numpy dtype made by pickle's NEWOBJ (``dtype.__new__(dtype, 'f4')``) instead of a
    call."""

    def __init__(self, marker=None):
        pass

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the object's
        return np.dtype

    def __reduce__(self):
        import copyreg
        return copyreg.__newobj__, (np.dtype, 'f4')


def doubled_last(self):
    """A HistoryBuffer statistic the tests register (HistoryBuffer.register_statistics)."""
    return self._log_history[-1] * 2


def impostor_doubled_last(self):
    """Another function registered under the name ``doubled_last``."""
    return -1


impostor_doubled_last.__name__ = 'doubled_last'


class StatisticsHolder:
    """A HistoryBuffer statistic defined in a class (pickled as ``getattr(Holder, name)``)."""

    @staticmethod
    def tripled_last(self):
        return self._log_history[-1] * 3


def evil_checkpoint(tmp_path, payload=WritesMarkerViaExec, path=None):
    """A checkpoint whose unpickling writes a marker file: (its path, the marker's path)."""
    marker = str(tmp_path / 'pwned.txt')
    path = path or str(tmp_path / 'evil.pth')
    torch.save(
        {
            'state_dict': OrderedDict(w=torch.zeros(2)),
            'meta': {
                'iter': 2,
                'payload': payload(marker)
            }
        }, path)
    return path, marker


# ----------------------------------------------------------------------------------------------
# experiment results (experiments/stats.py, experiments/collect_results.py)

# Per-seed results of two methods, as experiments/stats.py reads them
FAKE_RUNS = {
    'hcfcn_reg': {
        0: {
            'BR': 1.0,
            'aAcc': 80.0
        },
        1: {
            'BR': 2.0,
            'aAcc': 81.0
        },
        2: {
            'BR': 3.0,
            'aAcc': 82.0
        }
    },
    'hcfcn': {
        0: {
            'BR': 4.0,
            'aAcc': 80.0
        },
        1: {
            'BR': 5.0,
            'aAcc': 81.0
        },
        2: {
            'BR': 6.0,
            'aAcc': 82.0
        }
    },
}
