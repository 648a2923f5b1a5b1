#!/usr/bin/env python
"""Does the augmentation change accuracy? One model trained per seed and augmentation variant,
then the variants compared pair by pair (same seed) on test pixel error.

    python scripts/benchmark.py augmentation_seeds --data EXAMPLE_DIR --out OUT --seeds 26-75 \
        [--variants new old hybrid] [--jobs N] [key=value ...]

Variants (each trains ``benchmarks/augmentation_seeds.yaml``, the protocol's fixed model config,
with ``model.model_type=heatmap`` and ``training.rng_seed_model_pt=SEED``; every step runs eagerly, ``training.cuda_graphs=false``, since
kornia's pipeline cannot be captured):
- ``new``: the library's augmentation (``lightning_pose_lib.data.augment``);
- ``old``: kornia's ``AugmentationSequential`` with the same five transforms, the library's
  pipeline before commit f7eaa8b;
- ``hybrid``: ``new`` with kornia's ``RandomAffine`` in place of its own affine step.

Each training is its own process (one CPU thread), ``--jobs`` at a time; finished ones (a
``train_status.json``) are kept, so a rerun resumes (``--stop-after`` ends a run early for that).
The summary compares each variant with ``new``: median and mean error, failed trainings (above
``--failed`` px, Fisher's exact test), and the two-sided sign test over seeds. It is printed and written to OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = Path(__file__).with_suffix(".yaml")
VARIANTS = ("new", "old", "hybrid")


def old_augmentation():
    """The pipeline of f7eaa8b^ (kornia's AugmentationSequential), as it was."""
    import kornia.augmentation as K
    from torch import nn

    from lightning_pose_lib.data.augment import outside_frame

    class KorniaAugmentation(nn.Module):
        def __init__(self, name: str):
            super().__init__()
            self.name = name
            self.pipeline = None if name == "none" else K.AugmentationSequential(
                K.RandomAffine(degrees=25.0, scale=(0.85, 1.15), translate=(0.05, 0.05), p=0.4),
                K.RandomMotionBlur(kernel_size=5, angle=90.0, direction=0.5, p=0.5),
                K.ColorJitter(brightness=0.25, contrast=0.25, p=0.5),
                K.RandomGaussianNoise(mean=0.0, std=0.03, p=0.3),
                K.RandomErasing(scale=(0.005, 0.02), ratio=(0.5, 2.0), p=0.3),
                data_keys=["input", "keypoints"],
            )

        @torch.no_grad()
        def forward(self, images, keypoints):
            if self.pipeline is None:
                return images, keypoints
            if images.ndim != 4:
                raise ValueError("this benchmark's kornia variants take single frames only")
            h, w = images.shape[-2:]
            missing = torch.isnan(keypoints).any(-1)
            images, moved = self.pipeline(images, torch.nan_to_num(keypoints, nan=0.0))
            moved = moved.clone()
            moved[missing | outside_frame(moved, h, w)] = float("nan")
            return images.clamp(0.0, 1.0), moved

    return KorniaAugmentation


def hybrid_augmentation():
    """The library's pipeline with its affine step switched off (probability 0 in this process)
    and kornia's RandomAffine, with the same settings, applied before it."""
    import kornia.augmentation as K

    from lightning_pose_lib.data import augment

    settings = dict(degrees=augment.MAX_DEGREES, scale=augment.SCALE, translate=(augment.TRANSLATE, augment.TRANSLATE), p=augment.AFFINE_P)
    augment.AFFINE_P = 0.0

    class KorniaAffineThenOurs(augment.Augmentation):
        def __init__(self, name: str):
            super().__init__(name)
            self.affine = K.AugmentationSequential(K.RandomAffine(**settings), data_keys=["input", "keypoints"])

        @torch.no_grad()
        def forward(self, images, keypoints):
            if self.name == "none":
                return images, keypoints
            if images.ndim != 4:
                raise ValueError("this benchmark's kornia variants take single frames only")
            missing = torch.isnan(keypoints).any(-1, keepdim=True)
            images, moved = self.affine(images, torch.nan_to_num(keypoints, nan=0.0))
            return super().forward(images, torch.where(missing, float("nan"), moved))

    return KorniaAffineThenOurs


def train_one(variant: str, seed: int, data: str, model_dir: Path, overrides: list[str]) -> None:
    """In a child process: swap the variant's augmentation into the model, then train."""
    torch.set_num_threads(1)
    from lightning_pose_lib.config import load_config
    from lightning_pose_lib.models import pose_model
    from lightning_pose_lib.train import train

    if variant == "old":
        pose_model.Augmentation = old_augmentation()
    elif variant == "hybrid":
        pose_model.Augmentation = hybrid_augmentation()
    cfg = load_config(PROTOCOL, overrides=[
        f"data.data_dir={data}", "model.model_type=heatmap", "training.cuda_graphs=false",
        f"training.rng_seed_model_pt={seed}", *overrides])
    train(cfg, model_dir)


def test_error(model_dir: Path) -> float | None:
    status = model_dir / "train_status.json"
    if not status.exists():
        return None
    return json.loads(status.read_text()).get("metrics", {}).get("test_pixel_error")


def run_all(args) -> None:
    jobs = [(v, s) for s in args.seeds for v in args.variants if test_error(args.out / v / str(s)) is None]
    print(f"{len(jobs)} trainings to run, {args.jobs} at a time", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

    start = time.monotonic()

    def launch(job):
        variant, seed = job
        if args.stop_after is not None and time.monotonic() - start > args.stop_after:
            return  # out of time: a later run resumes here
        model_dir = args.out / variant / str(seed)
        model_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--one", variant, str(seed), "--data", str(args.data), "--out", str(args.out), *args.overrides]
        with open(model_dir / "run.log", "w") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        print(f"{variant} seed {seed}: " + (f"exit {code}, see {model_dir / 'run.log'}" if code else f"{test_error(model_dir):.2f} px"), flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(launch, jobs))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped before)."""
    n, k = wins + losses, min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher's exact test of the 2 x 2 table [[a, b], [c, d]]."""
    row, col, n = a + b, a + c, a + b + c + d

    def p(x):
        return math.comb(col, x) * math.comb(n - col, row - x) / math.comb(n, row)

    observed = p(a)
    return min(1.0, sum(p(x) for x in range(max(0, row + col - n), min(row, col) + 1) if p(x) <= observed * (1 + 1e-9)))


def summarize(args) -> dict:
    errors = {v: {s: test_error(args.out / v / str(s)) for s in args.seeds} for v in args.variants}
    summary = {"seeds": [min(args.seeds), max(args.seeds)], "failed_above_px": args.failed, "variants": {}}
    for v, by_seed in errors.items():
        values = [e for e in by_seed.values() if e is not None]
        if not values:
            continue
        row = {"runs": len(values), "median": statistics.median(values), "mean": statistics.fmean(values),
               "failed": sum(e > args.failed for e in values)}
        if v != "new" and "new" in errors:
            pairs = [(errors["new"][s], e) for s, e in by_seed.items() if e is not None and errors["new"][s] is not None]
            worse = sum(e > n for n, e in pairs)  # this variant worse than new
            better = sum(e < n for n, e in pairs)
            new_failed = sum(n > args.failed for n, _ in pairs)
            this_failed = sum(e > args.failed for _, e in pairs)
            row.update(pairs=len(pairs), better_than_new=better, worse_than_new=worse, sign_test_p=sign_test(better, worse),
                       failed_fisher_p=fisher_exact(this_failed, len(pairs) - this_failed, new_failed, len(pairs) - new_failed))
        summary["variants"][v] = row
    summary["errors"] = {v: {str(s): e for s, e in by_seed.items()} for v, by_seed in errors.items()}
    return summary


def print_summary(summary: dict) -> None:
    print(f"seeds {summary['seeds'][0]}-{summary['seeds'][1]}, test pixel error (px), failed: above {summary['failed_above_px']} px")
    for v, row in summary["variants"].items():
        line = f"{v:<7} runs {row['runs']:3d}  median {row['median']:6.2f}  mean {row['mean']:6.2f}  failed {row['failed']:3d}"
        if "pairs" in row:
            line += (f"  vs new: better in {row['better_than_new']} of {row['pairs']}, worse in {row['worse_than_new']}"
                     f" (sign test p = {row['sign_test_p']:.3g}; failures, Fisher p = {row['failed_fisher_p']:.3g})")
        print(line)


def seed_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (scripts/make_example.py writes one)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the models and summary.json")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("26-75"), help="first-last (default 26-75)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="trainings at once")
    parser.add_argument("--failed", type=float, default=6.0, help="a training above this test error (px) failed")
    parser.add_argument("--stop-after", type=float, help="start no training after this many seconds (a rerun resumes)")
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--summary-only", action="store_true", help="only summarise the models already in OUT")
    args, args.overrides = parser.parse_known_args(argv)
    if args.one:
        variant, seed = args.one
        train_one(variant, int(seed), str(args.data), args.out / variant / seed, args.overrides)
        return
    if not args.summary_only:
        run_all(args)
    summary = summarize(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)


if __name__ == "__main__":
    main()
