#!/usr/bin/env python
"""Training throughput on several GPUs against one GPU, for the same global batch, in one run.

    python scripts/benchmark.py ddp_scaling --data DATASET_DIR --out OUT [--gpus 2] [--batch 32] [--clip 32]
        [--epochs 8] [--backbone resnet50] [--size 256] [--context] [--cpu] [key=value ...]

Trains a semi-supervised model (temporal loss) with ``scripts/train.py`` twice, from the same seed:
on one GPU with ``--batch`` labeled frames and one unlabeled clip of ``--clip`` frames per step, then
with Lightning DDP on ``--gpus`` GPUs, each with its share (``batch / gpus`` labeled frames and a clip
of ``clip / gpus`` frames; ``training.train_batch_size`` and the clip length are per device). A
step then trains on the same number of frames either way, so the speed-up is the ratio of steps/s,
which each run records in its ``train_status.json`` (steady state: every epoch but the first,
without validation and checkpoints; :class:`lightning_pose_lib.callbacks.TrainingSpeed`). The
context model's clips are ``dali.context.train.batch_size`` frames. Prints and writes
OUT/ddp_scaling.json: GPU, versions, both rates, the ratio, and each run's wall time. ``--cpu``
runs the same on CPU processes talking through gloo (how the tests check this script).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from throughput import versions  # noqa: E402

from lightning_pose_lib.io import write_text_atomic  # noqa: E402


def run(model_dir: Path, overrides: list[str]) -> dict:
    """One training through scripts/train.py (DDP needs its own process tree); its status record."""
    start = time.perf_counter()
    log = model_dir.with_suffix(".log")
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, str(ROOT / "scripts/train.py"), "--model-dir", str(model_dir), *overrides], stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"training failed with exit status {code}; see {log}")
    status = json.loads((model_dir / "train_status.json").read_text())
    status["wall_seconds"] = round(time.perf_counter() - start, 1)
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: CollectedData.csv, labeled-data/, videos/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="labeled frames per step, over all GPUs")
    parser.add_argument("--clip", type=int, default=32, help="unlabeled frames per step, over all GPUs")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--context", action="store_true", help="the heatmap_mhcrnn context model")
    parser.add_argument("--cpu", action="store_true", help="CPU processes instead of GPUs (fp32)")
    parser.add_argument("overrides", nargs="*", help="more dotted config overrides for both runs")
    args = parser.parse_args()
    if args.batch % args.gpus or args.clip % args.gpus:
        parser.error(f"--batch and --clip must divide among {args.gpus} GPUs")
    if not args.cpu and torch.cuda.device_count() < args.gpus:
        sys.exit(f"{args.gpus} GPUs asked for, {torch.cuda.device_count()} visible")
    clip_key = "dali.context.train.batch_size" if args.context else "dali.base.train.sequence_length"
    common = [
        f"data.data_dir={args.data.resolve()}", "data.video_dir=videos", f"model.backbone={args.backbone}", "model.backbone_pretrained=false",
        f"data.image_resize_dims.height={args.size}", f"data.image_resize_dims.width={args.size}", "model.losses_to_use=[temporal]",
        f"training.max_epochs={args.epochs}", f"training.min_epochs={args.epochs}", f"training.check_val_every_n_epoch={args.epochs}",
        "training.unfreezing_epoch=0", "callbacks.anneal_weight.freeze_until_epoch=0",
        *(["training.accelerator=cpu", "training.precision=32-true"] if args.cpu else ["training.accelerator=gpu", "training.precision=bf16-mixed"]),
    ]
    if args.context:
        common += ["model.model_type=heatmap_mhcrnn", "model.do_context=true"]
    results = {"device": "cpu" if args.cpu else torch.cuda.get_device_name(0), "gpus": args.gpus, "versions": versions(), "global_batch": {"labeled": args.batch, "unlabeled": args.clip},
               "model": f"{'heatmap_mhcrnn' if args.context else 'heatmap'} {args.backbone} {args.size}x{args.size}, semi-supervised (temporal)", "runs": {}}
    for gpus in (1, args.gpus):
        per_device = [f"training.num_gpus={gpus}", f"training.train_batch_size={args.batch // gpus}", f"{clip_key}={args.clip // gpus}"]
        status = run(args.out / f"gpus{gpus}", common + per_device + args.overrides)
        results["runs"][gpus] = {"train_steps_per_s": status["train_steps_per_s"], "wall_seconds": status["wall_seconds"], "epochs": status["epochs"]}
        print(f"{gpus} GPU(s): {status['train_steps_per_s']:.2f} steps/s ({args.batch} labeled + {args.clip} unlabeled frames a step), {status['wall_seconds']} s in all", flush=True)
    results["ratio"] = results["runs"][args.gpus]["train_steps_per_s"] / results["runs"][1]["train_steps_per_s"]
    print(f"{args.gpus} GPUs / 1 GPU: {results['ratio']:.2f}")
    write_text_atomic(args.out / "ddp_scaling.json", json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
