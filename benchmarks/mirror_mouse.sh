#!/usr/bin/env bash
# Train supervised, temporal, pca and context models on the mirror-mouse example side by side (one
# GPU), then print each model's pixel error on the labeled test frames.
#   bash benchmarks/mirror_mouse.sh DATA_DIR OUT_DIR [extra key=value overrides]
set -euo pipefail
data=$1 out=$2; shift 2
mkdir -p "$out"
declare -A variants=(
    [supervised]=""
    [temporal]="model.losses_to_use=[temporal]"
    [pca]="model.losses_to_use=[pca_singleview,pca_multiview]"
    [context]="model.model_type=heatmap_mhcrnn model.do_context=true"
)
start=$(date +%s)
for name in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    python3 scripts/train.py --config benchmarks/mirror_mouse.yaml --model-dir "$out/$name" \
        data.data_dir="$data" ${variants[$name]} "$@" > "$out/$name.log" 2>&1 &
done
wait
echo "trained 4 models in $(( $(date +%s) - start )) s"
for name in supervised temporal pca context; do
    python3 - "$out/$name" <<'PY'
import json, sys
status = json.load(open(f"{sys.argv[1]}/train_status.json"))
m = status.get("metrics", {})
print(f"{sys.argv[1].split('/')[-1]:<11} test {m.get('test_pixel_error', float('nan')):6.2f} px  validation {m.get('validation_pixel_error', float('nan')):6.2f} px  train {m.get('train_pixel_error', float('nan')):6.2f} px  epochs {status.get('epochs')}")
PY
done
