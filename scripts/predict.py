#!/usr/bin/env python
"""Predict videos with a trained model: ``predict.py --model-dir DIR --output-dir OUT VIDEO [VIDEO ...]``.

Writes ``OUT/<video_stem>.csv`` and ``OUT/<video_stem>.h5`` per video. The model is loaded once for
all videos; videos whose outputs exist are skipped unless ``--overwrite``.
"""

import argparse
import logging
import time
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.predict import default_device, load_model, predict_video


def predict_all(model_dir, jobs, batch_size=None, backend=None, overwrite=False):
    """``jobs``: (video, csv, h5) triples, predicted with one model load."""
    model = load_model(model_dir, default_device())
    batch_size = batch_size or model.cfg["dali"]["base"]["predict"]["sequence_length"]
    backend = backend or model.cfg["dali"]["backend"]
    for video, csv_path, h5_path in jobs:
        if not overwrite and Path(csv_path).exists() and Path(h5_path).exists():
            logging.info("%s: already predicted, skipping", video)
            continue
        start = time.perf_counter()
        table = predict_video(model, video, csv_path, h5_path, batch_size=batch_size, backend=backend)
        elapsed = time.perf_counter() - start
        logging.info("%s: %d frames in %.1f s (%.0f frames/s) -> %s", video, len(table), elapsed, len(table) / elapsed, csv_path)


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--batch-size", type=int, default=None, help="frames per batch (default: dali.base.predict.sequence_length)")
    parser.add_argument("--backend", default=None, help="video reader: auto, pyav or dali (default: the model's dali.backend)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("videos", nargs="+")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    jobs = [(v, out / f"{Path(v).stem}.csv", out / f"{Path(v).stem}.h5") for v in args.videos]
    predict_all(args.model_dir, jobs, args.batch_size, args.backend, args.overwrite)


def rule_main(smk):
    model_dir = Path(smk.input.best).parent.parent
    backend = None if smk.params.backend == "auto" else smk.params.backend
    predict_all(model_dir, [(smk.input.video, smk.output.csv, smk.output.h5)], smk.params.batch_size, backend, overwrite=True)


if __name__ == "__main__":
    run(cli_main, rule_main)
