#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment at .venv/ with the pinned
# OpenMMLab stack. Called by `make install`; safe to run again (does nothing slow when the
# environment is already up to date).
#
# mmcv 2.1.0 has no wheel for current torch, so it is built from its source distribution with
# compiled ops (MMCV_WITH_OPS=1, plus CUDA ops when nvcc and a CUDA torch are present). The
# built wheel is cached outside the repository, keyed by torch version and CUDA/CPU:
#     ${MMSEG_SPIXREG_CACHE:-$HOME/.cache/mmseg-spixreg}/wheels/torch<ver>-<cpu|cuXY>/
# so the next install on the same machine only copies it.
#
# Environment variables:
#   PYTHON                 interpreter used to create the venv (default: python3)
#   VENV                   where the venv goes (default: .venv in the repository root)
#   MMSEG_SPIXREG_CACHE    wheel cache root (default: ~/.cache/mmseg-spixreg)
#   MMCV_CUDA=0|1          force the CPU-only (0) or CUDA (1) mmcv build; default: auto
#   MAX_JOBS               parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${MMSEG_SPIXREG_CACHE:-$HOME/.cache/mmseg-spixreg}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmseg_spixreg_install_stamp"

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The stamp is the hash of everything that decides the environment's content.
want_stamp="$(cat requirements/*.txt setup.py tools/install_env.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] \
    && "$VENV/bin/python" -c "import mmseg_spixreg, mmcv.ops" >/dev/null 2>&1; then
    log "environment at $VENV is up to date"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

log "installing torch + torchvision (requirements/torch.txt)"
"${PIP[@]}" install -q -r requirements/torch.txt
"${PIP[@]}" install -q -r requirements/build.txt

TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
TORCH_CUDA="$("$PY" -c 'import torch; print(torch.version.cuda or "")')"
if [[ "${MMCV_CUDA:-auto}" == "1" ]] || { [[ "${MMCV_CUDA:-auto}" == "auto" ]] \
        && command -v nvcc >/dev/null 2>&1 && [[ -n "$TORCH_CUDA" ]] \
        && "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; }; then
    FLAVOUR="cu${TORCH_CUDA//./}"
    export FORCE_CUDA=1
else
    FLAVOUR="cpu"
    export FORCE_CUDA=0
fi
WHEELS="$CACHE/wheels/torch${TORCH_VER}-${FLAVOUR}"
mkdir -p "$WHEELS"
shopt -s nullglob
cached=("$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl)
if (( ${#cached[@]} == 0 )); then
    log "no cached mmcv $MMCV_VERSION wheel for torch $TORCH_VER ($FLAVOUR): building from source"
    log "this takes ~25 min on 2 cores; it is done once per machine"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: \
        "mmcv==$MMCV_VERSION" -d "$work"
    tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
    src="$work/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers use C++20 features; mmcv's setup.py hard-codes -std=c++14/17.
    if "$PY" -c 'import sys,torch; v=tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 14) else 1)'; then
        log "patching mmcv setup.py: -std=c++1x -> -std=c++20 (torch $TORCH_VER headers need C++20)"
        sed -i -E 's/-std=c\+\+1[147]/-std=c++20/g' "$src/setup.py"
    fi
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" wheel -v --no-deps --no-build-isolation . -w "$work/dist" > "$work/build.log" 2>&1) \
        || { tail -n 60 "$work/build.log"; log "mmcv build failed (log above)"; exit 1; }
    # move into place atomically so an interrupted build never leaves a broken cache entry
    for w in "$work"/dist/mmcv-*.whl; do
        cp "$w" "$WHEELS/.tmp.$(basename "$w")" && mv "$WHEELS/.tmp.$(basename "$w")" "$WHEELS/$(basename "$w")"
    done
    cached=("$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl)
    log "cached ${cached[0]}"
else
    log "using cached ${cached[0]}"
fi

log "installing mmcv, mmengine, mmsegmentation, mmpretrain, runtime, test, lint and deploy requirements"
"${PIP[@]}" install -q "${cached[0]}" -r requirements/mminstall.txt -r requirements/runtime.txt \
    -r requirements/tests.txt -r requirements/lint.txt -r requirements/deploy.txt
log "installing mmseg_spixreg (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

"$PY" -c "import mmseg_spixreg, mmseg.models, mmpretrain.models; from mmcv.ops import ModulatedDeformConv2d" \
    || { log "import check failed"; exit 1; }
"$PY" -m flake8 --version >/dev/null && "$PY" -m isort --version >/dev/null \
    && "$PY" -m yapf --version >/dev/null || { log "lint tools check failed"; exit 1; }
echo "$want_stamp" > "$STAMP"
log "done: $VENV (torch $TORCH_VER, mmcv $MMCV_VERSION $FLAVOUR)"
