#!/usr/bin/env bash
# What tools/dist_train.sh and tools/dist_test.sh share (mmseg's torch.distributed launch):
#   bash tools/dist_launch.sh SCRIPT GPUS [SCRIPT args]
# runs tools/SCRIPT in GPUS processes with --launcher pytorch (before the SCRIPT args). On a
# CPU-only machine GPUS is the number of processes (gloo backend is chosen automatically).
# Environment: NNODES, NODE_RANK, PORT, MASTER_ADDR, PYTHON.
SCRIPT=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/$SCRIPT" \
    --launcher pytorch \
    "${@:3}"
