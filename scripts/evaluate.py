#!/usr/bin/env python
"""Metrics of a trained model: ``evaluate.py --model-dir DIR``.

Reads the model's saved predictions (labeled frames and ``video_preds/*.csv``), never the network;
writes ``metrics/pixel_error.csv`` (per labeled frame and keypoint, with its set) and
``metrics/summary.json`` (mean pixel error per set, mean temporal norm per video, mean-pose baseline).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from lightning_pose_lib.cli import run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.io import atomic_path, write_text_atomic
from lightning_pose_lib.metrics import mean_pose_baseline, pixel_error, summarize_pixel_error, temporal_norm


def evaluate(model_dir, video_predictions=()):
    model_dir = Path(model_dir)
    cfg = read_yaml(model_dir / "config.yaml")
    dataset = load_dataset(cfg)
    error = pixel_error(read_pose_table(model_dir / "predictions.csv"), dataset.labels)
    summary = summarize_pixel_error(error)
    baseline = summarize_pixel_error(mean_pose_baseline(dataset.labels, dataset.sets))
    summary.update({f"baseline_{k}": v for k, v in baseline.items()})
    summary["pixel_error_per_keypoint"] = {
        name: error.loc[error["set"] == name].drop(columns="set").mean().to_dict()
        for name in ("validation", "test") if (error["set"] == name).any()
    }
    norms = {Path(p).stem: float(np.nanmean(temporal_norm(read_pose_table(p)).to_numpy())) for p in video_predictions}
    summary["temporal_norm"] = norms
    if norms:
        summary["mean_temporal_norm"] = float(np.mean(list(norms.values())))
    with atomic_path(model_dir / "metrics" / "pixel_error.csv") as tmp:
        error.to_csv(tmp, float_format="%.4f")
    write_text_atomic(model_dir / "metrics" / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    args = parser.parse_args(argv)
    videos = sorted(str(p) for p in (Path(args.model_dir) / "video_preds").glob("*.csv"))
    print(json.dumps(evaluate(args.model_dir, videos), indent=2))


def rule_main(smk):
    evaluate(smk.params.model_dir, smk.input.videos)


if __name__ == "__main__":
    run(cli_main, rule_main)
