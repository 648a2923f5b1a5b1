#!/usr/bin/env python
"""Predict videos with a trained model: ``predict.py --model-dir DIR --output-dir OUT VIDEO [VIDEO ...]``.

Writes ``OUT/<video_stem>.csv`` and ``OUT/<video_stem>.h5`` per video. A multi-camera model
(``data.view_names``) takes whole sessions, every view's video ``<session>_<view>.mp4``, and
writes ``OUT/<session>_<view>.csv/.h5`` per view. The model is loaded once for
all videos; videos whose outputs exist are skipped unless ``--overwrite``. A video that fails (bad
file) does not stop the others; the run then ends with an error naming every failed video.

In the workflow (rule predict_videos) one job predicts a chunk of videos into the model's prediction
store ``video_preds/.store/`` and writes a manifest; see workflow/rules/predict.smk.
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

from lightning_pose_lib.cli import ArgumentParser, exit_now, positive_int, run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.sessions import check_frame_counts, group_sessions
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.io import write_text_atomic
from lightning_pose_lib.locks import model_lock

# torch and the rest of the library are imported where needed, not here: this script's top level
# runs again in each decoder process (multiprocessing re-imports the main script there), and
# --help or a bad argument should not wait for them either.


def predict_all(model_dir, jobs, batch_size=None, backend=None, is_done=None, decoders=None, compile=False, allow_incomplete=False):
    """Predict ``jobs`` -- (video, csv, h5) triples -- with one model load, holding the model
    folder's lock (shared with other predictions, not with training).

    ``is_done(csv, h5)`` says whether a video's outputs can be kept (default: both exist). Returns a
    record per video (frames, seconds, skipped) plus the seconds until the model was ready."""
    with model_lock(model_dir, shared=True):
        return _predict_all(model_dir, jobs, batch_size, backend, is_done, decoders, compile, allow_incomplete)


def _predict_all(model_dir, jobs, batch_size, backend, is_done, decoders, compile, allow_incomplete):
    started = time.perf_counter()
    check_sessions(model_dir, [video for video, _, _ in jobs])
    from lightning_pose_lib.workers import start_server

    is_done = is_done or (lambda csv, h5: Path(csv).exists() and Path(h5).exists())
    todo = [job for job in jobs if not is_done(job[1], job[2])]
    records = [{"video": str(v), "csv": str(c), "h5": str(h), "skipped": True} for v, c, h in jobs if (v, c, h) not in todo]
    for record in records:
        logging.info("%s: already predicted, skipping", record["video"])
    if not todo:
        return {"model_ready_s": None, "videos": records}
    start_server()  # the decoder and writer processes' server starts while this process imports torch and loads the model
    from lightning_pose_lib.predict import default_device, load_model, predict_videos

    model = load_model(model_dir, default_device(), allow_incomplete=allow_incomplete)
    model_ready_s = time.perf_counter() - started
    logging.info("model loaded on %s in %.1f s", model.device, model_ready_s)
    batch_size = batch_size or model.cfg["dali"]["base"]["predict"]["sequence_length"]
    backend = backend or model.cfg["dali"]["backend"]
    # Several videos decode at once (threads) while the model runs: see predict_videos.
    results = predict_videos(model, todo, batch_size=batch_size, backend=backend, decoders=decoders, compile=compile)
    failed = []
    for (video, csv_path, h5_path), result in zip(todo, results):
        if isinstance(result.outcome, Exception):  # a bad video must not cost the others of this job
            logging.error("%s", result.outcome)
            failed.append(result.outcome)
            continue
        frames = len(result.outcome)
        records.append({"video": str(video), "csv": str(csv_path), "h5": str(h5_path), "skipped": False, "frames": frames, "seconds": round(result.seconds, 3)})
        logging.info("%s: %d frames in %.1f s -> %s", video, frames, result.seconds, csv_path)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise InputError(None, f"{len(failed)} of {len(todo)} videos failed: " + "; ".join(map(str, failed)))
    return {"model_ready_s": round(model_ready_s, 3), "videos": records}


def check_sessions(model_dir, videos) -> None:
    """A multi-camera model (``data.view_names``) predicts whole sessions: every view's video of
    each session, ``<session>_<view>.<ext>``, all of one frame count; InputError otherwise."""
    config = Path(model_dir) / "config.yaml"
    views = read_yaml(config)["data"]["view_names"] if config.is_file() else None
    if views:
        for session_videos in group_sessions(videos, views).values():
            check_frame_counts(session_videos)


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--batch-size", type=positive_int, default=None, help="frames per batch (default: dali.base.predict.sequence_length)")
    parser.add_argument("--backend", choices=["auto", "pyav", "dali"], default=None, help="video reader: auto, pyav or dali (default: the model's dali.backend)")
    parser.add_argument("--decoders", type=positive_int, default=None, help="videos decoded at the same time (default 6; with PyAV at most the CPUs of the job)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone (GPU; pays off for long runs: about a minute to compile)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--allow-incomplete", action="store_true", help="predict with a model whose training has not completed (its best checkpoint so far)")
    parser.add_argument("--report", default=None, help="write the per-video timings (JSON) here")
    parser.add_argument("videos", nargs="+")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    jobs = [(v, out / f"{Path(v).stem}.csv", out / f"{Path(v).stem}.h5") for v in args.videos]
    report = predict_all(args.model_dir, jobs, args.batch_size, args.backend, is_done=(lambda csv, h5: False) if args.overwrite else None, decoders=args.decoders, compile=args.compile, allow_incomplete=args.allow_incomplete)
    if args.report:
        write_text_atomic(args.report, json.dumps(report, indent=2) + "\n")


def rule_main(smk):
    """Rule predict_videos: every video of one chunk into the store, then the chunk's manifest."""
    best = Path(smk.input.best)
    store = Path(smk.params.store)
    backend = None if smk.params.backend == "auto" else smk.params.backend
    jobs = [(v, store / f"{Path(v).stem}.csv", store / f"{Path(v).stem}.h5") for v in smk.input.videos]

    def is_done(csv, h5):
        # Predictions older than the checkpoint came from an earlier training of this model.
        return all(Path(p).exists() and os.path.getmtime(p) >= os.path.getmtime(best) for p in (csv, h5))

    report = predict_all(best.parent.parent, jobs, smk.params.batch_size, backend, is_done=is_done)
    write_text_atomic(smk.output.manifest, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    run(cli_main, rule_main)
    exit_now()  # a job's last second: tearing down torch saves nothing
