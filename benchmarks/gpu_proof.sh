#!/usr/bin/env bash
# GPU proofs on a lent GPU machine with no network (see docs in the closing notes):
#   1. install the carried wheels into /tmp/site (benchmarks/gpu_env.sh; gpu_bundle.sh packs DALI,
#      kornia, av and jsonschema, not snakemake and its dependencies, which step 4 also needs);
#   2. GPU tests (DALI NVDEC vs PyAV, backbones vs torchvision);
#   3. decode throughput DALI vs PyAV on the mirror-mouse video;
#   4. the example workflow (train + predict + evaluate) on the GPU.
# Usage: bash benchmarks/gpu_proof.sh MOUSE_DATA_DIR   (writes logs to $OUT)
set -uo pipefail
mouse=$1
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, nvidia.dali, kornia, av, snakemake; print('torch', torch.__version__, 'dali', nvidia.dali.__version__, 'kornia', kornia.__version__, 'snakemake', snakemake.__version__)" | tee -a "$out/gpu.txt"

echo "== GPU tests" | tee "$out/tests.log"
python3 -m pytest -q -p no:cacheprovider tests/test_video_dali.py tests/test_models.py tests/test_heatmaps.py 2>&1 | tail -15 | tee -a "$out/tests.log"

echo "== decode throughput" | tee "$out/decode.log"
python3 benchmarks/decode.py "$mouse/videos/test_vid.mp4" --repeats 3 2>&1 | grep -v Warn | tee -a "$out/decode.log"

echo "== example workflow on the GPU" | tee "$out/workflow.log"
start=$(date +%s)
python3 -m snakemake --profile profiles/default --cores 8 --quiet rules 2>&1 | tail -20 | tee -a "$out/workflow.log"
echo "workflow wall time: $(( $(date +%s) - start )) s" | tee -a "$out/workflow.log"
cp results/example/summary.csv "$out/" 2>/dev/null
grep -h "frames/s\|GPU available\|stopped" logs/train/example/*.log logs/predict/example/*/*.log 2>/dev/null | tee -a "$out/workflow.log"
