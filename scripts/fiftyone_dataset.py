#!/usr/bin/env python
"""Build the FiftyOne dataset of a project dataset, to browse in the FiftyOne App:
``fiftyone_dataset.py --name NAME --output dataset.json MODEL_DIR [MODEL_DIR ...]``.

Every labeled frame (images and labels as the first model's config.yaml names them) with the
ground truth and each model's predictions (``predictions.csv``, ``predictions_pixel_error.csv``);
``--video STEM=FILE --video-frames N`` adds N frames sampled from each video with each model's
``video_preds/<STEM>.csv`` and its video metrics. The dataset ``NAME`` in ``--database-dir`` is
replaced; ``--output`` gets the sample counts. Open it with ``scripts/fiftyone_app.py NAME``.
Needs the optional extra: ``pip install -e '.[fiftyone]'``.
"""

import argparse
import json
from pathlib import Path

from lightning_pose_lib.cli import ArgumentParser, run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.io import write_text_atomic
from lightning_pose_lib.viz.fiftyone_view import build_dataset, import_fiftyone, read_model_results


def fiftyone_dataset(name, database_dir, model_dirs, output, videos=None, video_frames=0, frames_dir=None) -> dict:
    import_fiftyone(database_dir)  # first: a missing FiftyOne is said before any file is read
    videos = videos or {}
    dataset = load_dataset(read_yaml(Path(model_dirs[0]) / "config.yaml"))
    models = [read_model_results(d, list(videos) if video_frames else []) for d in model_dirs]
    summary = build_dataset(name, database_dir, dataset.data_dir, dataset.labels, models, videos, video_frames, frames_dir)
    write_text_atomic(output, json.dumps(summary, indent=2) + "\n")
    print(f"FiftyOne dataset {name!r}: {summary['labeled_frames']} labeled frames, {summary['video_frames']} video frames, "
          f"{len(models)} models; open it with: python scripts/fiftyone_app.py {name} --database-dir {database_dir}")
    return summary


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="FiftyOne dataset name")
    parser.add_argument("--database-dir", default="results/fiftyone_db")
    parser.add_argument("--output", required=True, help="summary JSON")
    parser.add_argument("--video", action="append", default=[], metavar="STEM=FILE")
    parser.add_argument("--video-frames", type=int, default=0)
    parser.add_argument("--frames-dir", default=None, help="where sampled video frames are written (default: next to --output)")
    parser.add_argument("model_dirs", nargs="+")
    args = parser.parse_args(argv)
    videos = dict(v.split("=", 1) for v in args.video)
    frames_dir = args.frames_dir or Path(args.output).parent / "frames"
    fiftyone_dataset(args.name, args.database_dir, args.model_dirs, args.output, videos, args.video_frames, frames_dir)


def rule_main(smk):
    fiftyone_dataset(
        smk.wildcards.dataset, smk.params.database_dir, smk.params.model_dirs, smk.output[0],
        smk.params.videos, smk.params.video_frames, smk.params.frames_dir,
    )


if __name__ == "__main__":
    run(cli_main, rule_main)
