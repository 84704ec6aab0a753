#!/usr/bin/env bash
# Distributed training, as mmseg's tools/dist_train.sh: bash tools/dist_train.sh CONFIG GPUS [train.py args]
# On a CPU-only machine GPUS is the number of processes (gloo backend is chosen automatically).
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
