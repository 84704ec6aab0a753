# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""`make demo`: the method end to end on data the project generates itself (no download).

1. generates a small deterministic data set of colour/texture regions with fine labels
   (mmseg_spixreg.utils.synthetic_data) under WORK_DIR/data,
2. derives coarse training labels with tools/dataset_converters/make_coarse_labels.py
   (the paper's protocol: erode every class region, Douglas-Peucker polygon, rest ignored),
3. trains HCFCN-16 without and with the SLIC regulariser on the COARSE labels through
   tools/train.py (configs/demo/),
4. evaluates both on the FINE validation labels through tools/test.py (pixel accuracy, boundary
   recall (Stutz and eq. 7), ASA (eq. 8), mIoU) and prints a table,
5. writes superpixel visualisations (image + hard-superpixel boundaries, prediction, ground
   truth) with tools/visualize_superpixels.py under WORK_DIR/vis.

Everything lands under ``work_dirs/demo`` (``--work-dir``). About 10 minutes on 2 CPU cores.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

METHODS = (
    ('HCFCN-16', 'configs/demo/hcfcn16_r34_synthetic_coarse.py'),
    ('HCFCN-16 + SLIC', 'configs/demo/hcfcn_r34_synthetic_coarse.py'),
)
COLUMNS = (('PixAcc', 'pixel acc'), ('BR', 'BR'), ('BR_paper', 'BR (eq. 7)'),
           ('ASA', 'ASA (eq. 8)'), ('ClsErr', 'ASA - acc'), ('mIoU', 'mIoU'))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    p.add_argument(
        '--iters',
        type=int,
        default=None,
        help='training iterations per method (default: the demo configs\')')
    p.add_argument('--num-train', type=int, default=48)
    p.add_argument('--num-val', type=int, default=12)
    p.add_argument('--size', type=int, default=128, help='image side length')
    p.add_argument(
        '--erosion',
        type=int,
        default=4,
        help='coarse-label erosion in px (the paper\'s 12 px at ~500 px, scaled)')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def step(msg):
    print(f'\n[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(cmd):
    env = dict(os.environ, PYTHON=sys.executable)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def data_options(data_root):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}'
    ]


def main():
    args = parse_args()
    t0 = time.time()
    work = osp.abspath(args.work_dir)
    data_root = osp.join(work, 'data')
    os.makedirs(work, exist_ok=True)

    step(f'1/5 generating {args.num_train}+{args.num_val} images of {args.size}x{args.size} '
         f'(seed {args.seed}) in {data_root}')
    from mmseg_spixreg.utils.synthetic_data import make_synthetic_dataset
    make_synthetic_dataset(
        data_root,
        num_train=args.num_train,
        num_val=args.num_val,
        size=(args.size, args.size),
        seed=args.seed)

    step(f'2/5 coarse training labels (erosion {args.erosion} px + Douglas-Peucker)')
    run([
        sys.executable, 'tools/dataset_converters/make_coarse_labels.py',
        osp.join(data_root, 'ann_dir', 'train'),
        osp.join(data_root, 'ann_dir_coarse', 'train'), '--erode',
        str(args.erosion), '--overwrite'
    ])

    results = {}
    for i, (name, cfg) in enumerate(METHODS):
        tag = osp.splitext(osp.basename(cfg))[0]
        train_dir = osp.join(work, tag)
        step(f'3/5 training {name} ({i + 1}/{len(METHODS)}) -> {train_dir}')
        opts = data_options(data_root) + [f'randomness.seed={args.seed}']
        if args.iters:
            opts.append(f'train_cfg.max_iters={args.iters}')
        run([sys.executable, 'tools/train.py', cfg, '--work-dir', train_dir, '--cfg-options'] +
            opts)
        with open(osp.join(train_dir, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        step(f'4/5 testing {name} on the fine validation labels')
        test_dir = osp.join(train_dir, 'test')
        run([sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', test_dir, '--cfg-options'] +
            data_options(data_root))
        # the metrics json tools/test.py wrote under test_dir/<timestamp>/
        newest = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)[-1]
        with open(newest) as f:
            results[name] = json.load(f)
        step(f'5/5 superpixel visualisations of {name}')
        run([
            sys.executable, 'tools/visualize_superpixels.py', cfg, ckpt, '--out-dir',
            osp.join(work, 'vis', tag), '--num-images', '4', '--cfg-options'
        ] + data_options(data_root))

    header = '| method | ' + ' | '.join(c for _, c in COLUMNS) + ' |'
    lines = [header, '|---|' + '---|' * len(COLUMNS)]
    for name, m in results.items():
        cells = [f'{m[k]:.2f}' if k in m else 'n/a' for k, _ in COLUMNS]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    step(f'done in {time.time() - t0:.0f} s; trained on coarse labels, evaluated on fine ones:')
    print(table)
    print(f'\nvisualisations: {osp.join(work, "vis")}\ntable: {osp.join(work, "results.md")}')


if __name__ == '__main__':
    main()
