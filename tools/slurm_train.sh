#!/usr/bin/env bash
# Slurm training, as mmseg's tools/slurm_train.sh: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
exec bash "$(dirname "$0")/slurm_launch.sh" "$1" "$2" train.py "${@:3}"
