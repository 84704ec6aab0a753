# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""tools/visualize_superpixels.py: a model's superpixels drawn on real CamVid images."""
import os
import os.path as osp

import cv2

from tests.utils import REPO_ROOT, run_tool


def test_tool_draws_hcfcn_superpixels_on_camvid(tmp_path, camvid_root):
    """tools/visualize_superpixels.py on one real CamVid image with an HCFCN-16 model."""
    cfg = tmp_path / 'hcfcn_camvid.py'
    base = osp.join(REPO_ROOT, 'configs', '_base_')
    cfg.write_text(f"_base_ = ['{base}/models/hcfcn16_r34.py', '{base}/datasets/camvid.py',\n"
                   f"          '{base}/default_runtime.py']\n"
                   'model = dict(backbone=dict(init_cfg=None), decode_head=dict(num_classes=11))\n'
                   f"val_dataloader = dict(dataset=dict(data_root='{camvid_root}'))\n")
    out_dir = tmp_path / 'vis'
    proc = run_tool([
        'tools/visualize_superpixels.py',
        str(cfg), '--indices', '0', '--device', 'cpu', '--out-dir',
        str(out_dir)
    ],
                    timeout=300)
    pngs = sorted(os.listdir(out_dir))
    assert len(pngs) == 1 and pngs[0].endswith('_superpixels.png'), pngs
    panel = cv2.imread(str(out_dir / pngs[0]))
    assert panel.shape == (360 + 22, 3 * 480, 3)
    # The model's hard superpixels were drawn: several of them, and their count is reported.
    line = [ln for ln in proc.stdout.splitlines() if pngs[0] in ln][0]
    n_spix = int(line.split(': ')[1].split(' superpixels')[0])
    assert n_spix > 50, line
    assert 'SpixASA' in line and 'BR' in line
