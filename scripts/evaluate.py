#!/usr/bin/env python
"""Metrics of a trained model, from its saved predictions only (never the network, never a refit):
``evaluate.py --model-dir DIR``.

Next to every predictions file ``<stem>.csv`` (``predictions.csv`` on labeled frames,
``video_preds/<video>.csv`` on videos) it writes one table per metric, per frame and keypoint in
pixels: ``<stem>_pixel_error.csv`` (labeled frames, with their set), ``<stem>_temporal_norm.csv``
(videos), ``<stem>_truth_error.csv`` (videos with the truth of every frame beside them,
``<video stem>_truth.csv``, as the generated example has), and ``<stem>_pca_singleview_error.csv`` / ``<stem>_pca_multiview_error.csv`` when the
model config sets ``data.columns_for_singleview_pca`` / ``data.mirrored_column_matches`` or
``data.view_names`` (from the model's saved ``pca_*.npz``). Several cameras: a video's
``<session>_<view>_pca_multiview_error.csv`` is the consistency of the session's views (read from
the ``<session>_<view>.csv`` beside it), and with ``data.calibration_file``
``<session>_<view>_reprojection_error.csv`` is each keypoint's distance to its triangulated 3D
point reprojected into that view; the 3D points go to ``<session>_3d.csv``. Then ``metrics/summary.json``: mean, median and standard deviation of
each metric (per set on labeled frames, over all videos), per keypoint and per video, the number of
training frames and the mean-pose baseline.

``evaluate.py --model-dir DIR --predictions FILE --metric NAME [--video VIDEO]`` writes a single
metric table.

Prediction tables are checked first (complete rows; for a video one row per frame of the video,
found by its name in the model's ``data.video_dir`` or given with ``--video``).
"""

import argparse
import functools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_pose_lib.cli import ArgumentParser, run
from lightning_pose_lib.calibration import read_calibration
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.sessions import split_view
from lightning_pose_lib.video import VIDEO_SUFFIXES
from lightning_pose_lib.dataset import load_dataset, resolve
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.io import write_csv, write_text_atomic
from lightning_pose_lib.metrics import (
    SET_COLUMN,
    VIDEO_METRICS,
    is_metric_file,
    keypoint_array,
    mean_pose_baseline,
    metric_path,
    metrics_for,
    multiview_pca_error,
    pca_error,
    pixel_error,
    read_metric,
    read_predictions,
    reprojection_error,
    stats,
    stats_by_set,
    temporal_norm,
    truth_error,
    truth_path,
)
from lightning_pose_lib.pca import load_model_pcas, pca_path


def write_metric(model_dir, predictions_path, metric: str, out=None, video=None) -> Path:
    """Compute one metric of one predictions file and write it next to that file (or to ``out``);
    ``video``: the predicted video, whose frame count the table must have."""
    model_dir, predictions_path = Path(model_dir), Path(predictions_path)
    predictions = read_predictions(predictions_path, None if video is None else frame_count(video))
    if metric == "pixel_error":
        try:
            table = pixel_error(predictions, load_dataset(read_yaml(model_dir / "config.yaml")).labels)
        except ValueError as err:
            raise InputError(predictions_path, f"does not fit the model's labels: {err}") from None
    elif metric == "temporal_norm":
        table = temporal_norm(predictions)
    elif metric == "truth_error":
        if video is None:
            raise InputError(predictions_path, "truth_error needs the video, beside which its truth lies (--video)")
        truth = truth_path(video)
        try:
            table = truth_error(predictions, read_predictions(truth, len(predictions)))
        except ValueError as err:
            raise InputError(truth, f"does not fit {predictions_path}: {err}") from None
    elif metric in ("pca_singleview_error", "pca_multiview_error"):
        kind = metric.split("_")[1]
        pca = load_model_pcas(model_dir).get(kind)
        views = read_yaml(model_dir / "config.yaml")["data"]["view_names"]
        if pca is None:
            # Training saves a PCA only when it can be fitted (enough fully labeled frames); it is
            # never refitted here. The table stays, all NaN, so the model still has its row.
            logging.warning("%s not found (training could not fit it): %s is NaN", pca_path(model_dir, kind), metric)
            table = _nan_table(predictions)
        elif views and SET_COLUMN not in predictions.columns and kind == "multiview":
            # One camera's video: the consistency of its session's views.
            tables, me = session_tables(predictions_path, predictions, views)
            try:
                table = multiview_pca_error(tables, pca)[me]
            except ValueError as err:
                raise InputError(predictions_path, f"does not fit its session's other views: {err}") from None
        else:
            table = pca_error(predictions, pca, views=len(views) if views and SET_COLUMN in predictions.columns else 1)
    elif metric == "reprojection_error":
        data = read_yaml(model_dir / "config.yaml")["data"]
        cameras = read_calibration(resolve(Path(data["data_dir"] or "."), data["calibration_file"]), data["view_names"])
        tables, me = session_tables(predictions_path, predictions, data["view_names"])
        errors, points = reprojection_error(tables, cameras)
        table = errors[me]
        # The 3D points beside the session's predictions (the same for every view: written by each).
        session = split_view(predictions_path.stem, data["view_names"])[0]
        write_csv(points, predictions_path.with_name(f"{session}_3d.csv"))
    else:
        raise ValueError(f"unknown metric {metric!r}")
    out = Path(out) if out is not None else metric_path(predictions_path, metric)
    write_csv(table, out)
    return out


def session_tables(predictions_path: Path, predictions, view_names) -> tuple[list, int]:
    """Several cameras: the prediction tables of every view of the session of ``predictions_path``
    (``<session>_<view>.csv``, beside it), and the index of its own view."""
    parsed = split_view(predictions_path.stem, view_names)
    if parsed is None:
        raise InputError(predictions_path, f"a multi-camera model's predictions must be named <session>_<view>.csv with a view of {', '.join(view_names)}")
    session, view = parsed
    tables = [predictions if v == view else read_predictions(predictions_path.with_name(f"{session}_{v}{predictions_path.suffix}")) for v in view_names]
    for v, table in zip(view_names, tables):
        if len(table) != len(predictions):
            raise InputError(predictions_path.with_name(f"{session}_{v}{predictions_path.suffix}"), f"has {len(table)} frames but {predictions_path.name} has {len(predictions)}: all views of a session must have the same frame count")
    return tables, list(view_names).index(view)


@functools.lru_cache(maxsize=None)
def frame_count(video) -> int:
    from lightning_pose_lib.video import probe_video

    return probe_video(video).num_frames


def find_video(model_dir, stem: str) -> str | None:
    """The video ``<stem>.<mp4|avi|...>`` in the model's ``data.video_dir``, if there."""
    data = read_yaml(Path(model_dir) / "config.yaml")["data"]
    folder = resolve(Path(data["data_dir"] or "."), data["video_dir"])
    found = [folder / f"{stem}{suffix}" for suffix in VIDEO_SUFFIXES] if folder is not None else []
    return next((str(p) for p in found if p.is_file()), None)


def _nan_table(predictions):
    _, _, names = keypoint_array(predictions)
    table = pd.DataFrame(np.nan, index=predictions.index, columns=names)
    if SET_COLUMN in predictions.columns:
        table["set"] = predictions[SET_COLUMN].to_numpy()
    return table


def _nan_to_null(value):
    """Strict JSON: NaN (a metric with no values) becomes null."""
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _flat(prefix: str, s: dict) -> dict:
    return {prefix: s["mean"], f"{prefix}_median": s["median"], f"{prefix}_std": s["std"]}


def summarize_model(model_dir, labeled: dict[str, str], videos: dict[str, dict[str, str]]) -> dict:
    """metrics/summary.json from the metric files: ``labeled[metric]`` is the metric table of the
    labeled frames, ``videos[video][metric]`` that of a video. Keys ``<set>_<metric>`` (mean),
    ``..._median``, ``..._std``; ``video_<metric>`` the same over every frame of every video."""
    model_dir = Path(model_dir)
    summary, per_keypoint = {}, {}
    predictions = read_predictions(model_dir / "predictions.csv")
    sets = predictions[SET_COLUMN].to_numpy().astype(str)
    summary["train_frames"] = int((sets == "train").sum())
    for metric, path in labeled.items():
        table = read_metric(path)
        for name, s in stats_by_set(table).items():
            summary.update(_flat(f"{name}_{metric}", s))
            per_keypoint[f"{name}_{metric}"] = table[table["set"] == name].drop(columns="set").mean().to_dict()
    dataset = load_dataset(read_yaml(model_dir / "config.yaml"))
    for name, s in stats_by_set(mean_pose_baseline(dataset.labels, sets)).items():
        summary[f"baseline_{name}_pixel_error"] = s["mean"]
    per_video = {}
    for metric in sorted({m for files in videos.values() for m in files}):
        tables = {video: read_metric(files[metric]) for video, files in videos.items() if metric in files}
        summary.update(_flat(f"video_{metric}", stats(np.concatenate([t.to_numpy().ravel() for t in tables.values()]))))
        per_keypoint[f"video_{metric}"] = {k: float(v) for k, v in mean_per_keypoint(tables).items()}
        for video, table in tables.items():
            per_video.setdefault(video, {})[metric] = stats(table.to_numpy())["mean"]
    summary["per_keypoint"] = per_keypoint
    summary["per_video"] = per_video
    write_text_atomic(model_dir / "metrics" / "summary.json", json.dumps(_nan_to_null(summary), indent=2, allow_nan=False) + "\n")
    return summary


def mean_per_keypoint(tables: dict) -> dict:
    """Mean per keypoint over the frames of several videos."""
    values = np.concatenate([t.to_numpy() for t in tables.values()], axis=0)
    names = next(iter(tables.values())).columns
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    sums = np.where(finite, values, 0.0).sum(axis=0)
    # Keypoints outside a PCA have no value at all: their mean is NaN (null in the JSON).
    return dict(zip(names, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)))


def evaluate(model_dir, video_predictions=()):
    """Standalone: every metric of every predictions file of the model, then the summary."""
    model_dir = Path(model_dir)
    cfg = read_yaml(model_dir / "config.yaml")
    video_files = {}
    for path in video_predictions:
        video_files[path] = find_video(model_dir, Path(path).stem)
        if video_files[path] is None:
            logging.warning("%s: its video is not in data.video_dir; its frame count is not checked", path)
    check_tables(model_dir / "predictions.csv", video_files)
    labeled = {m: str(write_metric(model_dir, model_dir / "predictions.csv", m)) for m in metrics_for(cfg, labeled=True)}
    videos = {
        Path(p).stem: {m: str(write_metric(model_dir, p, m, video=v)) for m in metrics_for(cfg, labeled=False) + _truth(v)}
        for p, v in video_files.items()
    }
    return summarize_model(model_dir, labeled, videos)


def _truth(video) -> list[str]:
    """The truth error, for a video with the truth of every frame beside it."""
    return ["truth_error"] if video is not None and truth_path(video).is_file() else []


def check_tables(labeled, videos: dict) -> None:
    """Every prediction table, before any metric file is written: a bad one must not leave the
    metrics of the others looking like a finished evaluation. ``videos``: table -> video or None."""
    read_predictions(labeled)
    for path, video in videos.items():
        read_predictions(path, None if video is None else frame_count(video))


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--predictions", help="one predictions file (with --metric): write only its metric table")
    parser.add_argument("--metric", choices=["pixel_error", *VIDEO_METRICS])
    parser.add_argument("--video", help="with --predictions of a video: the video, whose frame count the table must have")
    args = parser.parse_args(argv)
    if bool(args.predictions) != bool(args.metric):
        parser.error("--predictions and --metric go together")
    if args.predictions:
        print(write_metric(args.model_dir, args.predictions, args.metric, video=args.video))
        return
    videos = sorted(str(p) for p in (Path(args.model_dir) / "video_preds").glob("*.csv") if not is_metric_file(p) and not p.name.startswith("."))
    summary = evaluate(args.model_dir, videos)
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, dict)}, indent=2))


def rule_main(smk):
    model_dir = Path(smk.output.summary).parent.parent
    labeled = {m: str(write_metric(model_dir, smk.input.predictions, m, out)) for m, out in zip(smk.params.labeled_metrics, smk.output.labeled)}
    predictions = {Path(p).stem: p for p in smk.input.videos}
    check_tables(smk.input.predictions, {p: smk.params.video_files[video] for video, p in predictions.items()})
    videos = {}
    for (video, metric), out in zip(smk.params.video_metrics, smk.output.videos):
        videos.setdefault(video, {})[metric] = str(write_metric(model_dir, predictions[video], metric, out, video=smk.params.video_files[video]))
    summarize_model(model_dir, labeled, videos)


if __name__ == "__main__":
    run(cli_main, rule_main)
