#!/usr/bin/env bash
# Copyright (c) mmseg-spixreg contributors. All rights reserved.
# Every GPU check of the project in one call (one command of the team's device kit, <= 10 min):
#
#     source .dev/gpu_env.sh && bash benchmarks/run_gpu_checks.sh [OUT_DIR] [BUDGET_S]
#
# OUT_DIR defaults to $OUT. Steps, in this order, each with its own time limit (cut to what the
# budget has left), each writing OUT_DIR/<step>.log and one line to OUT_DIR/summary.txt (exit
# status, seconds); at most 8 files, as the device kit brings back:
#   info        GPU, driver, torch / triton versions, sha256 of the kernel sources checked
#   tests       the FULL test suite (tests/, every test, not only the CUDA cases) on a cold Triton
#               cache (TRITON_CACHE_DIR: a new empty folder) with MMSEG_SPIXREG_TRITON=1, so that
#               backend='auto' runs the Triton kernels on CUDA too; the interpreter and the
#               compiled kernels share the processes, as in `make test`. pytest-xdist (-n) when
#               installed. The compile checks are left to the next step
#   ptx         the sm_75 / sm_90 compile checks of the Triton kernels (no spills, vector loads,
#               float64 scalars as 64-bit parameters)
#   bench_ops   benchmarks/bench_ops.py --device cuda --backend triton (the GPU table's five sizes:
#               time and memory vs unfold, bytes model, fraction of the copy bandwidth measured in
#               the same run)
#   bench_model benchmarks/bench_model.py --device cuda --backend triton --cuda-graph (inference
#               eager and as CUDA graphs, per-part breakdown with launch counts; training-step
#               ratio)
#   campaign    only if >= 160 s are left: experiments/gpu_campaign.py (CamVid, 2 methods x 3
#               seeds), its logs / result.json / results.md packed into OUT_DIR/camvid_gpu.tar
# The last line of summary.txt says whether the tests and the compile checks passed; the goals
# (docs/design.md, "GPU goals") are read from bench_ops.log and bench_model.log.
# BUDGET_S (default 450) is the wall time the script may use: with gpu_env.sh's ~2 minutes on a
# fresh machine, the call stays inside the kit's 10 minutes. Each step's limit (info 20 s, tests
# 200 s, ptx 50 s, bench_ops 90 s, bench_model 90 s) is cut so that the later steps keep theirs;
# a larger budget (a warm machine) goes to the campaign.
set -u
out=${1:-${OUT:?usage: run_gpu_checks.sh [OUT_DIR] [BUDGET_S] (or set OUT)}}
budget=${2:-450}
start=$(date +%s)
mkdir -p "$out"
: >"$out/summary.txt"
left() { echo $((budget - ($(date +%s) - start))); }

declare -A status
step() {  # step NAME LIMIT_S RESERVE_S CMD...: at most LIMIT_S, leaving RESERVE_S for later steps
    local name=$1 limit=$2 reserve=$3 t0 rc avail
    shift 3
    avail=$(($(left) - reserve))
    if [ "$avail" -lt "$limit" ]; then limit=$avail; fi
    if [ "$limit" -lt 10 ]; then
        echo "$name skipped: only $(left)s of the budget left" | tee -a "$out/summary.txt"
        status[$name]=skipped
        return
    fi
    t0=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    status[$name]=$rc
    echo "$name rc=$rc $(($(date +%s) - t0))s (limit ${limit}s)" | tee -a "$out/summary.txt"
}

# a cold Triton cache: every kernel is compiled in this run, after the interpreted tests
export TRITON_CACHE_DIR
TRITON_CACHE_DIR=$(mktemp -d /tmp/triton_cache.XXXXXX)
# backend='auto' runs the Triton kernels on CUDA: what switching the default would do
export MMSEG_SPIXREG_TRITON=1
export PYTHONUNBUFFERED=1

step info 20 0 bash -c '
# pytest is not part of every CUDA image: install it from wheels beside the kit if missing
if ! python3 -c "import pytest" 2>/dev/null && ls .dev/extra/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site_extra .dev/extra/*.whl
fi
nvidia-smi
sha256sum mmseg_spixreg/ops/triton_kernels/*.py mmseg_spixreg/ops/superpixel.py mmseg_spixreg/ops/backends.py \
    mmseg_spixreg/ops/functions.py
echo "TRITON_CACHE_DIR=$TRITON_CACHE_DIR ($(ls -A "$TRITON_CACHE_DIR" | wc -l) entries)"
python3 -c "
import torch, triton, sys
print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"triton\", triton.__version__,
      \"cuda\", torch.version.cuda, torch.cuda.get_device_name())
for name in (\"pytest\", \"xdist\", \"scipy\"):
    try:
        print(name, __import__(name).__version__)
    except ImportError as e:
        print(\"no\", name, e)
"'
if [ -d /tmp/site_extra ]; then export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/tmp/site_extra; fi

xdist=()
if python3 -c 'import xdist' 2>/dev/null; then
    workers=$(( $(nproc) > 12 ? 12 : $(nproc) ))
    xdist=(-n "$workers" --dist load)
    export OMP_NUM_THREADS=2  # workers x threads within the cores
fi
step tests 200 230 python3 -m pytest tests -q -rs -p no:cacheprovider ${xdist[@]+"${xdist[@]}"} \
    --deselect tests/test_ops/test_triton_kernels.py::test_kernels_compile_for_nvidia_without_spills
unset OMP_NUM_THREADS
step ptx 50 180 python3 -m pytest -q -rs -p no:cacheprovider tests/test_ops/test_triton_kernels.py \
    -k compile_for_nvidia
step bench_ops 90 90 python3 benchmarks/bench_ops.py --device cuda --backend triton --repeats 5
step bench_model 90 0 python3 benchmarks/bench_model.py --device cuda --backend triton \
    --train-size 512 512 --batch 8 --repeat 5 --cuda-graph

# the campaign gets what is left (minus 20 s to pack its outputs)
avail=$(($(left) - 20))
if [ "$avail" -ge 400 ]; then epochs=30; elif [ "$avail" -ge 280 ]; then epochs=20
elif [ "$avail" -ge 160 ]; then epochs=10; else epochs=0; fi
if [ "$epochs" -gt 0 ]; then
    echo "campaign: ${epochs} epochs, ${avail}s available" | tee -a "$out/summary.txt"
    step campaign "$avail" 0 python3 experiments/gpu_campaign.py --work-dir /tmp/camvid_gpu \
        --epochs "$epochs" --val-every 5
    # everything but checkpoints and visualisations, as one file
    (cd /tmp && find camvid_gpu -type f \( -name '*.json' -o -name '*.md' -o -name '*.log' \
        -o -name '*.py' \) -print0 | tar --null -T - -cf "$out/camvid_gpu.tar")
else
    echo "campaign: skipped, only ${avail}s left" | tee -a "$out/summary.txt"
fi

if [ "${status[tests]:-}" = 0 ] && [ "${status[ptx]:-}" = 0 ]; then
    verdict="PASSED: full test suite (cold Triton cache) and compile checks"
else
    verdict="NOT PASSED: tests rc=${status[tests]:-none}, ptx rc=${status[ptx]:-none}"
fi
echo "verdict: $verdict; bench_ops rc=${status[bench_ops]:-none}," \
    "bench_model rc=${status[bench_model]:-none} (goals: read the logs); total" \
    "$(($(date +%s) - start))s" | tee -a "$out/summary.txt"
rm -rf "$TRITON_CACHE_DIR"
