#!/usr/bin/env python
"""Where a semi-supervised training step spends its time, one variant against another, in one run.

    python scripts/benchmark.py train_step --data DATASET_DIR --out OUT [--backbone resnet50] [--size 256]
        [--batch 16] [--clip 16] [--steps 30] [--compile]

A plain loop of training steps (bf16 on a GPU) in these variants:
- ``with loading``: the real loaders (labeled batches, unlabeled clips), settings as train();
- ``as train()``: the loaders' first batch again and again, already on the device (synthetic),
  with the deterministic settings of train() (Lightning's ``deterministic="warn"``: cuDNN
  deterministic, no autotuning, deterministic algorithms; new tensors' memory not filled);
- ``filling new memory``: the same with PyTorch's default under deterministic algorithms, which
  fills every new tensor's memory first (train() turns that off);
- ``no CUDA graphs``: the whole step run eagerly (``training.cuda_graphs: false``); the variants
  marked for graphs replay the step captured for the real batches' shapes (the others cannot:
  another shape, cuDNN's autotuned kernels, or a part of the step alone);
- ``cudnn.benchmark``: the step without the deterministic settings (eager);
- ``no augmentation``, ``supervised only``, ``backbone only`` (forward and backward of the
  backbone on the labeled batch): what the step's parts cost;
- with ``--compile``, ``compiled backbone``: the synthetic step with ``torch.compile`` on the backbone.
For each: steps/s, CPU milliseconds per step (until the step's work is queued) and the GPU busy
fraction (kernel time over wall time): with CPU ms near the wall time and the GPU busy well below 1,
the step is bound by the CPU queuing work, and halving the batch per GPU (DDP) gains nothing.
Peak GPU memory of the whole run in OUT/train_step.json.
Also the PyTorch profiler's top operations by CPU time for the ``with loading`` step
(OUT/train_step_profile.txt), and all figures in OUT/train_step.json.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from throughput import gpu_busy, sync, training_setup, versions  # noqa: E402

from lightning_pose_lib.config import load_config  # noqa: E402
from lightning_pose_lib.io import write_text_atomic  # noqa: E402
from lightning_pose_lib.streams import compute_stream  # noqa: E402


def deterministic(on: bool, fill: bool = False) -> None:
    """What train() sets (Lightning's Trainer(deterministic="warn"), without filling new tensors'
    memory unless ``fill``), or neither."""
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = fill
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on


def measure(step, steps: int) -> dict:
    for _ in range(3):  # warm-up (cuDNN autotuning when enabled)
        step()
    sync()
    cpu = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        queued = time.perf_counter()
        step()
        cpu += time.perf_counter() - queued
    sync()
    wall = (time.perf_counter() - start) / steps
    out = {"steps_per_s": 1 / wall, "cpu_ms_per_step": 1000 * cpu / steps, "wall_ms_per_step": 1000 * wall}
    if torch.cuda.is_available():
        out["gpu_busy"] = gpu_busy(step, wall, calls=5)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: CollectedData.csv, labeled-data/, videos/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="labeled frames per step")
    parser.add_argument("--clip", type=int, default=16, help="unlabeled frames per step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="last, the synthetic step with the backbone compiled (torch.compile)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as Lightning sets it for deterministic runs
    on_gpu = torch.cuda.is_available()
    cfg = load_config(overrides=[
        f"data.data_dir={args.data.resolve()}", "data.video_dir=videos", f"model.backbone={args.backbone}", "model.backbone_pretrained=false",
        f"data.image_resize_dims.height={args.size}", f"data.image_resize_dims.width={args.size}", "model.losses_to_use=[temporal]",
        f"training.train_batch_size={args.batch}", f"dali.base.train.sequence_length={args.clip}",
        f"training.precision={'bf16-mixed' if on_gpu else '32-true'}",
    ])
    results = {"device": torch.cuda.get_device_name(0) if on_gpu else "cpu", "versions": versions(),
               "model": f"heatmap {args.backbone} {args.size}x{args.size}, {args.batch} labeled + {args.clip} unlabeled frames, temporal loss", "variants": {}}
    with compute_stream():
        model, step, stream, batch0 = training_setup(cfg)
        supervised = {k: v for k, v in batch0.items() if k != "unlabeled"}
        images = batch0["labeled"]["image"].float() / 255
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu)

        def backbone_only():
            with amp:
                loss = model.features(images).float().square().mean()
            loss.backward()

        augment = model.augment.name
        variants = {  # name: (deterministic, fill new tensors' memory, augmentation, CUDA graphs, step)
            "with loading": (True, False, augment, True, lambda: step(next(stream))),
            "as train()": (True, False, augment, True, lambda: step(batch0)),
            "no CUDA graphs": (True, False, augment, False, lambda: step(batch0)),
            "filling new memory": (True, True, augment, True, lambda: step(batch0)),
            "cudnn.benchmark": (False, False, augment, False, lambda: step(batch0)),
            "no augmentation": (True, False, "none", True, lambda: step(batch0)),
            "supervised only": (True, False, augment, False, lambda: step(supervised)),
            "backbone only": (True, False, augment, False, backbone_only),
        }
        for name, (determined, fill, augmentation, graphs, run) in variants.items():
            deterministic(determined, fill)
            model.augment.name = augmentation
            model.cfg["training"]["cuda_graphs"] = graphs
            figures = measure(run, args.steps)
            results["variants"][name] = figures
            print(f"{name:18s} " + "  ".join(f"{k} {v:8.2f}" for k, v in figures.items()), flush=True)
        deterministic(True)
        model.cfg["training"]["cuda_graphs"] = True
        model.augment.name = augment
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
        with profile(activities=activities) as prof:
            for _ in range(5):
                step(next(stream))
            sync()
        if args.compile:  # last: compiling changes the model for good, and may fail
            deterministic(True)
            model.cfg["training"]["cuda_graphs"] = False
            model.backbone.compile()
            try:
                results["variants"]["compiled backbone"] = figures = measure(lambda: step(batch0), args.steps)
                print(f"{'compiled backbone':18s} " + "  ".join(f"{k} {v:8.2f}" for k, v in figures.items()), flush=True)
            except Exception as err:
                results["compile_error"] = f"{type(err).__name__}: {err}"[:500]
                print(results["compile_error"], flush=True)
    if on_gpu:
        results["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        print(f"peak GPU memory {results['peak_gpu_memory_gb']:.2f} GB")
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=70)
    (args.out / "train_step_profile.txt").write_text(table)
    print("\n".join(table.splitlines()[:25]))
    write_text_atomic(args.out / "train_step.json", json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
