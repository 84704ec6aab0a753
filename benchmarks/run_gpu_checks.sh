#!/usr/bin/env bash
# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Every GPU check of the project in one call, for a short GPU window (the team's device kit):
#
#     source .dev/gpu_env.sh && bash benchmarks/run_gpu_checks.sh OUT_DIR [BUDGET_S]
#
# Steps, each with its own time limit, each writing OUT_DIR/<step>.log, one line per step in
# OUT_DIR/summary.txt (exit status, seconds):
#   info        GPU, torch, triton versions
#   tests       the CUDA cases of the test suite (Triton kernels compiled, DCNv2, inference)
#   ptx         the sm_75 / sm_90 compile checks of the Triton kernels (no spills, vector loads)
#   bench_ops   benchmarks/bench_ops.py --device cuda (the GPU table's five sizes: time and memory
#               vs unfold, bytes model, fraction of the copy bandwidth measured in the same run)
#   bench_model benchmarks/bench_model.py --device cuda --cuda-graph (inference eager and as CUDA
#               graphs, per-part breakdown with launch counts; training-step ratio)
#   campaign    tools/gpu_campaign.py (CamVid, 2 methods x 3 seeds) with the epochs that fit the
#               time left; runs under /tmp, its logs, result.json files and results.md are
#               copied to OUT_DIR/camvid_gpu (no checkpoints)
# BUDGET_S (default 540) is the wall time the script may use; keep it below the call's limit.
set -u
out=${1:?usage: run_gpu_checks.sh OUT_DIR [BUDGET_S]}
budget=${2:-540}
start=$(date +%s)
mkdir -p "$out"
left() { echo $((budget - ($(date +%s) - start))); }

step() {  # step NAME LIMIT_S CMD...
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc $(($(date +%s) - t0))s (limit ${limit}s)" | tee -a "$out/summary.txt"
}

# pytest is not part of every CUDA image: install it from wheels beside the kit if missing
if ! python3 -c 'import pytest' 2>/dev/null && ls .dev/extra/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site_extra .dev/extra/*.whl \
        >"$out/pytest_install.log" 2>&1
    export PYTHONPATH=$PYTHONPATH:/tmp/site_extra
fi

step info 30 bash -c 'nvidia-smi; python3 -c "
import torch, triton, sys
print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"triton\", triton.__version__,
      \"cuda\", torch.version.cuda, torch.cuda.get_device_name())
try:
    import scipy; print(\"scipy\", scipy.__version__)
except ImportError as e:
    print(\"no scipy:\", e)
"'
step tests 120 python3 -m pytest -q -rs -p no:cacheprovider tests/test_ops/test_triton_kernels.py \
    tests/test_ops/test_superpixel.py tests/test_apis/test_inference.py tests/test_engine -k cuda
step ptx 90 python3 -m pytest -q -rs -p no:cacheprovider tests/test_ops/test_triton_kernels.py \
    -k compile_for_nvidia
step bench_ops 120 python3 benchmarks/bench_ops.py --device cuda --repeats 5
step bench_model 150 python3 benchmarks/bench_model.py --device cuda --train-size 512 512 \
    --batch 8 --repeat 5 --cuda-graph

# the campaign gets what is left (minus 20 s to copy its outputs back)
avail=$(($(left) - 20))
if [ "$avail" -ge 400 ]; then epochs=30; elif [ "$avail" -ge 280 ]; then epochs=20
elif [ "$avail" -ge 160 ]; then epochs=10; else epochs=0; fi
if [ "$epochs" -gt 0 ]; then
    echo "campaign: ${epochs} epochs, ${avail}s available" | tee -a "$out/summary.txt"
    step campaign "$avail" python3 tools/gpu_campaign.py --work-dir /tmp/camvid_gpu \
        --epochs "$epochs" --val-every 5
    # everything but checkpoints and visualisations
    (cd /tmp && find camvid_gpu -type f \( -name '*.json' -o -name '*.md' -o -name '*.log' \
        -o -name '*.py' \) -print0 | tar --null -T - -cf - | (cd "$out" && tar xf -))
else
    echo "campaign: skipped, only ${avail}s left" | tee -a "$out/summary.txt"
fi
echo "total $(($(date +%s) - start))s" | tee -a "$out/summary.txt"
