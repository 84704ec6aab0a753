# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""What tools/train.py and tools/test.py share: the arguments of mmsegmentation 1.2.2's tools
that both take (``config``, ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``),
the config built from them, and the process teardown around ``main``."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmseg.utils import register_all_modules

import mmseg_spixreg  # noqa: F401  (registers the plug-in's modules)
from mmseg_spixreg.utils import distributed_teardown, setup_cpu_distributed


def runner_parser(description, config_help, work_dir_help):
    """An argument parser with the positional ``config`` and ``--work-dir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help=work_dir_help)
    return parser


def add_runner_args(parser):
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank`` to ``parser``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch / torchrun pass --local-rank (torch>=2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args):
    """The config of ``args.config`` with ``--cfg-options``, the launcher and the work_dir.

    Registers mmseg's modules (default scope ``mmseg``), sets ``LOCAL_RANK`` from
    ``--local-rank`` where the launcher did not, and falls back from NCCL to gloo on machines
    without a GPU (``setup_cpu_distributed``). The work_dir is, in this priority, ``--work-dir``,
    the config's ``work_dir``, ``./work_dirs/<config file name>``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    setup_cpu_distributed(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def run(main):
    """Run ``main()`` so that every rank destroys its process group before the interpreter exits.

    A gloo group left alive at shutdown can abort the process after the work is done, so a rank
    that finished ends right there without interpreter finalisation (docs/design.md
    "Reliability").
    """
    with distributed_teardown(hard_exit=True):
        main()
