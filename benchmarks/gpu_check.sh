#!/usr/bin/env bash
# Issue 23's GPU check in one command, for a machine with one CUDA GPU whose Python already has
# torch (an H200 took about 8 minutes). Two steps:
#
#   bash benchmarks/gpu_check.sh prepare      # here: the project's .venv, PyPI reachable
#   bash benchmarks/gpu_check.sh run [OUT]    # there, from the repository root, with .gpu/ beside it
#
# `prepare` fills .gpu/ (git-ignored, ~50 MB): wheels of benchmarks/gpu-wheels.txt for CPython 3.12
# (what clipstudy and papermill need beyond a CUDA image's torch, numpy, pandas, ...), and two
# worlds (64 px, 60 classes; every class at the default suite sizes), built here because the
# emoji art packages are large. `run` installs the wheels into /tmp/site (the machine's torch
# stays), then in order, each with a time limit, everything logged to OUT/gpu-check.log:
#   1. the CPU suite's guard on a GPU machine (tests/test_device_paths.py, the parts without a world)
#   2. tests/test_gpu.py (make test-gpu) on the 64 px world
#   3. benchmarks/gpu_check.py: SLIP killed and resumed, eval cuda vs cpu and on 1,021 classes,
#      torchrun on cuda, vit-b-16 with SigLIP + FLIP + ToMe + Stacked RandAugment (eager, compiled)
#   4. benchmarks/mfu.py: vit-b-16 (eager, compiled) and vit-b-8 (eager) at 64 px, batch 1024, bf16
#   5. one notebook end to end on cuda (10_data_quantity at the smoke profile on the 64 px world)
#   6. benchmarks/gpu_step.py: where vit-b-16's step time goes (bare step eager / compiled / CUDA
#      graphs against the trainer, GPU busy share), batches 1024 and 2048
# OUT gets gpu-check.log, gpu-check-gpu.json, mfu-gpu.json, gpu-step-gpu.json and the executed
# notebook. ONLY="test-gpu gpu-step" (step names as logged) runs just those steps.
set -uo pipefail
cd "$(dirname "$0")/.."

case "${1:-run}" in
prepare)
  PY=.venv/bin/python
  rm -rf .gpu && mkdir -p .gpu/wheels
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.gpu/ >> .git/info/exclude; }
  grep -v '^#' benchmarks/gpu-wheels.txt | xargs python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/wheels || exit 1
  tmp=$(mktemp -d)
  $PY -m clipstudy --quiet world build --out "$tmp/w64" --pairs 2048 --image-size 64 --classes 60 \
    --retrieval-images 200 --probe-per-class 12 >/dev/null || exit 1
  $PY -m clipstudy --quiet world build --out "$tmp/w1021" --pairs 4096 >/dev/null || exit 1
  tar -C "$tmp" -cf - w64 w1021 | xz -1 -T0 > .gpu/worlds.tar.xz
  rm -rf "$tmp"
  du -sh .gpu
  ;;
run)
  OUT=${2:-${OUT:-/tmp/gpu-check}}
  mkdir -p "$OUT"
  LOG=$OUT/gpu-check.log
  export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu/wheels/*.whl >"$LOG" 2>&1 || { tail -5 "$LOG"; exit 1; }
  mkdir -p /tmp/gw && xz -dc .gpu/worlds.tar.xz | tar -C /tmp/gw -xf - || exit 1
  W=/tmp/gw/w64
  step() {  # step NAME SECONDS COMMAND...: run it, log its output, say how it ended
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || return 0
    echo "=== $name" >>"$LOG"
    timeout "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$LOG"
  }
  step machine 40 sh -c 'nvidia-smi -L; python3 -c "import torch, open_clip, clipstudy; print(torch.__version__, open_clip.__version__, torch.cuda.get_device_name())"'
  step cpu-guard 60 python3 -m pytest -q -p no:cacheprovider tests/test_device_paths.py \
    -k "nccl or gloo or random_state or shared_memory or precision or hides"
  step test-gpu 300 env CLIPSTUDY_TEST_GPU=1 CLIPSTUDY_TEST_WORLD=$W python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
  step gpu-check 200 sh -c "cd benchmarks && python3 gpu_check.py --world $W --world-1021 /tmp/gw/w1021 --out $OUT"
  step mfu 120 sh -c "cd benchmarks && python3 mfu.py --models vit-b-16,vit-b-8 --image-size 64 --batch 1024 \
    --precisions bf16 --steps 60 --skip 2 --log-every 10 --compile vit-b-16 --world $W --out $OUT"
  step notebook 100 python3 -m papermill -k python3 --no-progress-bar notebooks/10_data_quantity.ipynb \
    "$OUT/10_data_quantity-cuda.ipynb" -p profile smoke -p study_world $W -p runs_dir /tmp/nb-runs
  step gpu-step 540 sh -c "cd benchmarks && python3 gpu_step.py --world $W ${GPU_STEP_ARGS:---batches 1024,2048} --out $OUT"
  grep "^=== .*: exit" "$LOG"
  ;;
*)
  echo "usage: bash benchmarks/gpu_check.sh prepare | run [OUT]" >&2
  exit 2
  ;;
esac
