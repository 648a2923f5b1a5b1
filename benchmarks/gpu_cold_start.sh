#!/usr/bin/env bash
# The cold-start figures of docs/benchmarks.md on a GPU machine without network, in one call:
#   bash benchmarks/gpu_cold_start.sh MIRROR_MOUSE [more cold_start arguments]
# with the parts of `bash benchmarks/gpu_bundle.sh --no-dali` (or of the whole bundle) in
# /tmp/carry or .dali/bundle. Installs them (benchmarks/gpu_env.sh), compiles the bytecode of the
# machine's standard library and site-packages into PYTHONPYCACHEPREFIX (an installed environment
# has it; an image built with PYTHONDONTWRITEBYTECODE has not, and every process would compile
# them), then runs scripts/benchmark.py cold_start: 100 epochs of training (config/model.yaml,
# ResNet-50 at 256 x 256 from random initialisation, bf16) and prediction of 1, 8 and 32 copies of
# the video with PyAV. Writes to $OUT: gpu.txt, cold_start.txt (the figures as printed),
# cold_start.json and cold_start_logs.tgz (each process's log).
set -uo pipefail
mouse=$1
shift
source "$(dirname "$0")/gpu_env.sh"
export PYTHONPYCACHEPREFIX=/tmp/pyc
paths=$(python3 -c 'import sysconfig; p = sysconfig.get_paths(); print(p["stdlib"], p["purelib"])')
python3 -m compileall -q -j 0 /tmp/site $paths lightning_pose_lib scripts benchmarks > /dev/null 2>&1
python3 scripts/benchmark.py cold_start --out /tmp/cold_start --data "$mouse" --epochs 100 --videos 1 8 32 --backend pyav \
    --set model.backbone_pretrained=false --set training.precision=bf16-mixed "$@" 2>&1 | tee "$out/cold_start.txt"
cp /tmp/cold_start/cold_start.json "$out/" 2>/dev/null
tar -C /tmp/cold_start -czf "$out/cold_start_logs.tgz" $(cd /tmp/cold_start && ls *.log)
