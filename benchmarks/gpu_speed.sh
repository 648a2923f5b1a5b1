#!/usr/bin/env bash
# The throughput figures of docs/benchmarks.md on a GPU machine without network (DALI and the
# other wheels packed by benchmarks/gpu_bundle.sh and carried there):
#   bash benchmarks/gpu_speed.sh MOUSE_DATA_DIR heatmap|context [extra throughput.py flags]
# Runs the GPU tests (DALI, CUDA graphs, models, augmentation) once, then benchmarks/throughput.py
# on 32 copies of the mirror-mouse video with a ResNet-50 at 256 x 256; writes logs and
# throughput.json files to $OUT.
set -uo pipefail
mouse=$1
which=$2
shift 2
source "$(dirname "$0")/gpu_env.sh"
[ -f "$out/gpu_tests.log" ] || python3 -m pytest -q -p no:cacheprovider tests/test_video_dali.py tests/test_transforms.py tests/test_cuda_graphs.py tests/test_models.py tests/test_augment.py 2>&1 | tail -3 | tee "$out/gpu_tests.log"
flag=""
[ "$which" = context ] && flag="--context"
python3 scripts/benchmark.py throughput --data "$mouse" --out "/tmp/bench_$which" --copies 32 --backbone resnet50 --size 256 $flag "$@" 2>&1 \
    | grep -v "Warning\|warn(" | tee "$out/throughput_$which.log" | tail -30
cp "/tmp/bench_$which/throughput.json" "$out/throughput_$which.json" 2>/dev/null
grep -h "frames/s\|epoch\|Epoch" /tmp/bench_$which/*/train.log 2>/dev/null | tail -3
