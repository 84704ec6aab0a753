# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class MainProcessLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook`` whose test-metrics json is written by the main process only.

    mmengine 0.10.7's ``LoggerHook.after_test_epoch`` dumps the test metrics to
    ``<work_dir>/<timestamp>/<timestamp>.json`` on *every* rank: with ``tools/dist_test.sh`` the
    ranks write the same file at the same time (with their own ``time`` / ``data_time`` values,
    so the contents differ), and the file intermittently ends up as two interleaved documents
    (``json.decoder.JSONDecodeError: Extra data`` when ``experiments/run_experiment.py`` reads it).
    Here only rank 0 logs and writes it; the metrics are the same on every rank (mmengine's
    evaluator broadcasts them). Everything else is ``LoggerHook``'s (same arguments).
    """

    def after_test_epoch(self, runner, metrics=None):
        """Log and dump the test metrics on the main process only.

        Args:
            runner (Runner): The runner of the testing process.
            metrics (dict[str, float], optional): Evaluation results on the test set.
        """
        if is_main_process():
            super().after_test_epoch(runner, metrics)
