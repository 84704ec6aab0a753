#!/usr/bin/env bash
# Slurm testing, as mmseg's tools/slurm_test.sh: bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
exec bash "$(dirname "$0")/slurm_launch.sh" "$1" "$2" test.py "${@:3}"
