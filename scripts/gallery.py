#!/usr/bin/env python
"""Labeled frames where the models are worst, ground truth and predictions side by side:
``gallery.py --output FILE.png [--frames N] MODEL_DIR [MODEL_DIR ...]``.

Needs each model's ``predictions.csv`` and ``predictions_pixel_error.csv`` (evaluate.py) and the
labeled images (``data.data_dir`` of the first model's config). Frames are ranked by pixel error
(mean over keypoints and models), validation and test frames only when there are any.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.metrics import read_metric
from lightning_pose_lib.viz.gallery import make_gallery


def gallery(model_dirs: dict[str, Path], output, frames: int) -> list:
    cfg = read_yaml(next(iter(model_dirs.values())) / "config.yaml")
    dataset = load_dataset(cfg)
    predictions = {m: read_pose_table(d / "predictions.csv") for m, d in model_dirs.items()}
    errors = {m: read_metric(d / "predictions_pixel_error.csv") for m, d in model_dirs.items()}
    return make_gallery(dataset.data_dir, dataset.labels, predictions, errors, output, frames, cfg["eval"]["colormap"])


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
