#!/usr/bin/env python
"""Does unlabeled video help? Supervised vs semi-supervised (and context) models on the synthetic
example, at equal labeled frames and epochs, over several seeds.

Every model is scored on video frames that were never labeled, against the generator's ground
truth (``videos/*_truth.csv``): mean pixel error over all keypoints and frames, in original pixels.

    python benchmarks/semisupervised.py --data DIR --out OUT [--seeds 0 1 2] [--train-frames 20]
        [--variants supervised semisupervised context] [key=value ...]

``--data`` is an example dataset (made with scripts/make_example.py when missing); extra dotted
overrides apply to every model. Prints a table (mean and standard error over seeds) and writes it
to OUT/results.csv.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.example import make_example
from lightning_pose_lib.metrics import keypoint_array
from lightning_pose_lib.predict import default_device, load_model, predict_video
from lightning_pose_lib.train import train

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "supervised": [],
    "semisupervised": ["model.losses_to_use=[temporal,pca_singleview,pca_multiview]"],
    "temporal": ["model.losses_to_use=[temporal]"],
    "pca": ["model.losses_to_use=[pca_singleview,pca_multiview]"],
    "context": ["model.model_type=heatmap_mhcrnn", "model.do_context=true"],
    "context_semisupervised": ["model.model_type=heatmap_mhcrnn", "model.do_context=true", "model.losses_to_use=[temporal,pca_singleview,pca_multiview]"],
}


def video_error(model_dir: Path, data: Path) -> float:
    model = load_model(model_dir, default_device())
    errors = []
    for video in sorted((data / "videos").glob("*.mp4")):
        pred = predict_video(model, video, model_dir / "video_preds" / f"{video.stem}.csv", progress=False)
        truth = read_pose_table(video.with_name(f"{video.stem}_truth.csv"))
        p, _, _ = keypoint_array(pred)
        t, _, _ = keypoint_array(truth)
        errors.append(np.linalg.norm(p - t, axis=-1))
    return float(np.mean(np.concatenate(errors)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-frames", type=float, default=20)
    parser.add_argument("--variants", nargs="+", default=["supervised", "semisupervised", "context"], choices=sorted(VARIANTS))
    parser.add_argument("--base-config", default=str(ROOT / "config" / "model.yaml"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not (args.data / "CollectedData.csv").exists():
        make_example(args.data, seed=0, n_sessions=2, frames_per_session=200, n_labeled=100)
    example = ROOT / "config" / "config.yaml"
    import yaml

    dataset_cfg = yaml.safe_load(example.read_text())["datasets"]["example"]["model_config"]
    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            model_dir = args.out / f"{variant}__seed={seed}"
            if not (model_dir / "checkpoints" / "best.ckpt").exists():
                cfg = load_config(
                    args.base_config,
                    dataset_cfg,
                    {"data": {"data_dir": str(args.data), "video_dir": "videos"}},
                    overrides=[f"training.rng_seed_model_pt={seed}", f"training.train_frames={args.train_frames}", *VARIANTS[variant], *args.overrides],
                )
                train(cfg, model_dir)
            rows.append({"variant": variant, "seed": seed, "video_pixel_error": video_error(model_dir, args.data)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("variant")["video_pixel_error"].agg(["mean", "sem", "count"]).loc[args.variants]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "results.csv", index=False)
    print(f"\nvideo pixel error vs ground truth (px), train_frames={args.train_frames}, seeds {args.seeds}")
    print(summary.to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()
