#!/usr/bin/env python
"""Labeled frames where the models are worst, ground truth and predictions side by side:
``gallery.py --output FILE.png [--frames N] MODEL_DIR [MODEL_DIR ...]``.

Needs each model's ``predictions.csv`` and ``predictions_pixel_error.csv`` (evaluate.py) and the
labeled images (``data.data_dir`` of the first model's config). Frames are ranked by pixel error
(mean over keypoints and models), validation and test frames only when there are any.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_pose_lib.cli import run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import Labels, pose_table, read_pose_table
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.metrics import SET_COLUMN, keypoint_array, read_metric
from lightning_pose_lib.viz.gallery import make_gallery


def gallery(model_dirs: dict[str, Path], output, frames: int) -> list:
    cfg = read_yaml(next(iter(model_dirs.values())) / "config.yaml")
    dataset = load_dataset(cfg)
    predictions = {m: read_pose_table(d / "predictions.csv") for m, d in model_dirs.items()}
    errors = {m: read_metric(d / "predictions_pixel_error.csv") for m, d in model_dirs.items()}
    labels = dataset.labels
    if dataset.views:  # several cameras: every view's image its own row, so the worst views show
        labels, predictions, errors = views_as_rows(dataset, predictions, errors)
    return make_gallery(dataset.data_dir, labels, predictions, errors, output, frames, cfg["eval"]["colormap"])


def views_as_rows(dataset, predictions: dict, errors: dict):
    """Labels, predictions and pixel errors of a multi-camera dataset (views side by side in one
    row per instant) with one row per view's image instead."""
    views, first = dataset.views, dataset.views[0]
    k = first.num_keypoints
    paths = [p for view in views for p in view.image_paths]
    labels = Labels(paths, np.concatenate([view.keypoints for view in views]), first.keypoint_names, first.scorer)

    def split_predictions(table):
        points, likelihood, _ = keypoint_array(table)
        scorer = table.columns.get_level_values("scorer")[0]
        sets = table[SET_COLUMN].to_numpy()
        parts = [pose_table(points[:, v * k : (v + 1) * k], first.keypoint_names, scorer, likelihood[:, v * k : (v + 1) * k], view.image_paths) for v, view in enumerate(views)]
        out = pd.concat(parts)
        out[SET_COLUMN] = np.tile(sets, len(views))
        return out

    def split_errors(table):
        values = table.drop(columns="set").to_numpy()
        out = pd.DataFrame(np.concatenate([values[:, v * k : (v + 1) * k] for v in range(len(views))]), index=paths, columns=first.keypoint_names)
        out["set"] = np.tile(table["set"].to_numpy(), len(views))
        return out

    return labels, {m: split_predictions(t) for m, t in predictions.items()}, {m: split_errors(t) for m, t in errors.items()}


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("model_dirs", nargs="+")
    args = parser.parse_args(argv)
    shown = gallery({Path(d).name: Path(d) for d in args.model_dirs}, args.output, args.frames)
    print(f"{args.output}: {len(shown)} frames")


def rule_main(smk):
    gallery({m: Path(d) for m, d in zip(smk.params.models, smk.params.model_dirs)}, smk.output[0], smk.params.frames)


if __name__ == "__main__":
    run(cli_main, rule_main)
