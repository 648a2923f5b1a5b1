#!/usr/bin/env python
"""Several cameras: does semi-supervised training across cameras beat supervised training? Error
against the ground truth on every frame of every video of a generated 3-camera dataset.

    python scripts/benchmark.py multicam --data DATA --out OUT [--seeds 0 1 2] [--jobs N] [key=value ...]

DATA is a generated multi-camera example (made first when missing, with ``--sessions``,
``--frames``, ``--labeled``, ``--cameras``). Per seed (``training.rng_seed_model_pt`` and
``training.rng_seed_data_pt``) it trains ``benchmarks/multicam.yaml`` twice, ``supervised``
(no unsupervised loss) and ``semisupervised`` (``temporal``, ``pca_singleview`` and
``pca_multiview`` across the cameras), predicts every video, and measures per model:

- ``video_error``: mean distance (px) between prediction and ground truth over every keypoint of
  every frame of every view (``videos/<session>_<view>_truth.csv``);
- ``reprojected_error``: the same for the keypoints triangulated from the three views with the
  dataset's calibration and reprojected into each view;
- ``test_pixel_error`` of the labeled test frames.

Finished trainings (``train_status.json``) and predictions are kept, so a rerun resumes. The summary
(mean and standard deviation over seeds, and the per-seed differences) is printed and written to
OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = Path(__file__).with_suffix(".yaml")
VARIANTS = {"supervised": "[]", "semisupervised": "[temporal,pca_singleview,pca_multiview]"}


def make_data(args) -> dict:
    from lightning_pose_lib.example import make_example

    if not (args.data / "example.yaml").exists():
        make_example(args.data, seed=0, n_sessions=args.sessions, frames_per_session=args.frames, n_labeled=args.labeled, cameras=args.cameras)
    import yaml

    return yaml.safe_load((args.data / "example.yaml").read_text())


def train_and_predict(variant: str, seed: int, args, fields: dict) -> None:
    model_dir = args.out / variant / str(seed)
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    overrides = [
        f"data.data_dir={args.data}", "data.video_dir=videos",
        f"data.view_names={json.dumps(fields['view_names'])}", f"data.csv_file={json.dumps(fields['csv_file'])}",
        f"data.columns_for_singleview_pca={json.dumps(fields['columns_for_singleview_pca'])}",
        f"data.calibration_file={fields['calibration_file']}",
        f"model.losses_to_use={VARIANTS[variant]}",
        f"training.rng_seed_model_pt={seed}", f"training.rng_seed_data_pt={seed}", *args.overrides,
    ]
    from lightning_pose_lib.status import is_complete

    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / "run.log", "a") as log:
        if not is_complete(model_dir):
            subprocess.run([sys.executable, str(REPO / "scripts/train.py"), "--config", str(PROTOCOL), "--model-dir", str(model_dir), *overrides],
                           stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
        videos = sorted(str(p) for p in (args.data / "videos").glob("*.mp4"))
        subprocess.run([sys.executable, str(REPO / "scripts/predict.py"), "--model-dir", str(model_dir), "--output-dir", str(model_dir / "video_preds"), *videos],
                       stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
    print(f"{variant} seed {seed}: {json.dumps(measure(model_dir, args.data, fields))}", flush=True)


def measure(model_dir: Path, data: Path, fields: dict) -> dict:
    from lightning_pose_lib.calibration import read_calibration, triangulate
    from lightning_pose_lib.data.labels import read_pose_table
    from lightning_pose_lib.metrics import keypoint_array

    views = fields["view_names"]
    cameras = read_calibration(data / fields["calibration_file"], views)
    sessions = sorted({p.name.rsplit("_", 1)[0] for p in (data / "videos").glob("*.mp4")})
    errors_2d, errors_3d = [], []
    for session in sessions:
        truth = np.stack([keypoint_array(read_pose_table(data / "videos" / f"{session}_{v}_truth.csv"))[0] for v in views])
        predicted = np.stack([keypoint_array(read_pose_table(model_dir / "video_preds" / f"{session}_{v}.csv"))[0] for v in views])
        world = triangulate(cameras, predicted)
        reprojected = np.stack([c.project(world) for c in cameras])
        errors_2d.append(np.linalg.norm(predicted - truth, axis=-1).ravel())
        errors_3d.append(np.linalg.norm(reprojected - truth, axis=-1).ravel())
    status = json.loads((model_dir / "train_status.json").read_text())
    return {
        "video_error": float(np.mean(np.concatenate(errors_2d))),
        "reprojected_error": float(np.mean(np.concatenate(errors_3d))),
        "test_pixel_error": status.get("metrics", {}).get("test_pixel_error"),
    }


def summarize(args, fields: dict) -> dict:
    results = {v: {s: measure(args.out / v / str(s), args.data, fields) for s in args.seeds} for v in VARIANTS}
    summary = {"seeds": args.seeds, "variants": {}, "runs": {v: {str(s): r for s, r in by_seed.items()} for v, by_seed in results.items()}}
    for v, by_seed in results.items():
        row = {}
        for key in ("video_error", "reprojected_error", "test_pixel_error"):
            values = [r[key] for r in by_seed.values() if r[key] is not None]
            row[key] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0} if values else None
        summary["variants"][v] = row
    summary["semisupervised_minus_supervised_video_error"] = {
        str(s): results["semisupervised"][s]["video_error"] - results["supervised"][s]["video_error"] for s in args.seeds
    }
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--labeled", type=int, default=60)
    parser.add_argument("--cameras", type=int, choices=[2, 3], default=3)
    parser.add_argument("overrides", nargs="*", help="model config overrides, key=value")
    args = parser.parse_args(argv)
    args.data, args.out = args.data.resolve(), args.out.resolve()
    fields = make_data(args)
    jobs = [(v, s) for s in args.seeds for v in VARIANTS]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: train_and_predict(*job, args, fields), jobs))
    summary = summarize(args, fields)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for v, row in summary["variants"].items():
        print(f"{v:<15} " + "  ".join(f"{k} {m['mean']:.2f} +- {m['sd']:.2f} px" for k, m in row.items() if m))
    print("semisupervised - supervised, video error per seed:", {s: round(d, 2) for s, d in summary["semisupervised_minus_supervised_video_error"].items()})


if __name__ == "__main__":
    main()
