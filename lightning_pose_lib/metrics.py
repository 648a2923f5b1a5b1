"""Metrics computed from saved predictions; one function per formula.

Each per-frame metric is a table with one row per frame and one column per keypoint, in pixels
of the original frame (NaN where it does not apply), plus a ``set`` column for labeled frames.
Every prediction counts, whatever its likelihood: the metrics describe the predictions as they
are saved and used downstream (a low-likelihood keypoint is still a coordinate in the CSV).

The second half of this module maps metrics to files, with upstream Lightning Pose's names: the
metric of ``<dir>/<stem>.csv`` is ``<dir>/<stem>_<metric>.csv`` (``predictions_pixel_error.csv``,
``video_preds/<video>_temporal_norm.csv``, ``..._pca_singleview_error.csv``,
``..._pca_multiview_error.csv``). They are computed only from the saved predictions, the labels and
the model's saved PCA files; nothing is refitted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .calibration import reprojection_error as triangulate_and_reproject
from .data.labels import Labels, read_pose_table
from .errors import InputError

SET_COLUMN = ("set", "", "")
SETS = ("train", "validation", "test", "unused")


def read_predictions(path: str | os.PathLike, num_frames: int | None = None) -> pd.DataFrame:
    """A saved prediction table, checked before any metric is computed from it (:class:`InputError`
    naming the file otherwise): it reads as a pose table, every row is complete (a cut-off file
    leaves its last row part empty), and a video's table has one row per frame, 0 to
    ``num_frames`` - 1 when the video's frame count is known."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "predictions file not found")
    try:
        table = read_pose_table(path)
    except Exception as err:  # pandas' and h5py's errors for a foreign file are of many types
        raise InputError(path, f"not a prediction table (three header rows scorer, bodyparts, coords, then one row per frame): {type(err).__name__}") from None
    values = table.drop(columns=[SET_COLUMN], errors="ignore")
    coords = list(values.columns.get_level_values("coords")) if values.columns.nlevels == 3 else []
    parts = len(set(values.columns.get_level_values("bodyparts"))) if coords else 0
    # An ensemble's table has more columns per keypoint after these three (ensemble.py).
    each = coords[: len(coords) // parts] if parts and len(coords) % parts == 0 else []
    if each[:3] != ["x", "y", "likelihood"] or coords != each * parts:
        raise InputError(path, "not a prediction table: the coords header row must be x, y, likelihood for every keypoint")
    try:
        numbers = values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, "not a prediction table: it holds cells that are not numbers") from None
    empty = np.isnan(numbers)
    partial = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))
    if len(partial):
        raise InputError(path, f"row {partial[0] + 4} is incomplete ({int(empty[partial[0]].sum())} of {numbers.shape[1]} cells empty): the file may be cut off")
    if SET_COLUMN in table.columns:  # labeled frames: the labels say which frames (pixel_error)
        return table
    frames = np.asarray(table.index)
    if not np.issubdtype(frames.dtype, np.integer) or not np.array_equal(frames, np.arange(len(frames))):
        raise InputError(path, "a video's prediction table must have one row per frame, numbered from 0 without gaps")
    if num_frames is not None and len(frames) != num_frames:
        raise InputError(path, f"has {len(frames)} rows but its video has {num_frames} frames: the file is cut off or belongs to another video")
    return table


def keypoint_array(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, K, 2) coordinates, (N, K) likelihoods and names from a prediction table."""
    columns = table.drop(columns=[SET_COLUMN], errors="ignore").columns
    names = list(dict.fromkeys(columns.get_level_values("bodyparts")))
    # A copy: pandas may hand out a read-only view, which torch (Pose PCA) warns about.
    values = np.array(table[columns].to_numpy(dtype=np.float64)).reshape(len(table), len(names), -1)
    likelihood = values[..., 2] if values.shape[-1] > 2 else np.ones(values.shape[:2])
    return values[..., :2], likelihood, names


def _per_keypoint(values: np.ndarray, predictions: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A metric table; labeled predictions pass their set column on."""
    table = pd.DataFrame(values, index=predictions.index, columns=names)
    if SET_COLUMN in predictions.columns:
        table["set"] = predictions[SET_COLUMN].to_numpy()
    return table


def pixel_error(predictions: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """Euclidean distance between prediction and label, per labeled frame and keypoint (pixels);
    NaN where the keypoint is not labeled."""
    pred, _, names = keypoint_array(predictions)
    if names != labels.keypoint_names:
        raise ValueError(f"the predictions' keypoints {names} are not the labels' {labels.keypoint_names}")
    if list(predictions.index) != labels.image_paths:
        raise ValueError(f"the predictions' {len(predictions)} frames are not the labels' {len(labels)} frames, in their order")
    return _per_keypoint(np.linalg.norm(pred - labels.keypoints, axis=-1), predictions, names)


def mean_pose_baseline(labels: Labels, sets: np.ndarray) -> pd.DataFrame:
    """The trivial baseline: every frame gets the mean training pose; its pixel error table."""
    mean_pose = np.nanmean(labels.keypoints[sets == "train"], axis=0)
    error = pd.DataFrame(np.linalg.norm(mean_pose[None] - labels.keypoints, axis=-1), index=labels.image_paths, columns=labels.keypoint_names)
    error["set"] = sets
    return error


def summarize_pixel_error(error: pd.DataFrame) -> dict[str, float]:
    """Mean pixel error over labeled keypoints, per set: {"validation_pixel_error": ..., ...}."""
    return {f"{name}_pixel_error": stats["mean"] for name, stats in stats_by_set(error).items() if stats["n"]}


def temporal_norm(predictions: pd.DataFrame) -> pd.DataFrame:
    """Distance each keypoint moved since the previous frame (pixels); the first row is NaN."""
    points, _, names = keypoint_array(predictions)
    jumps = np.full(points.shape[:2], np.nan)
    jumps[1:] = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    return pd.DataFrame(jumps, index=predictions.index, columns=names)


def truth_error(predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Euclidean distance between prediction and ground truth in every frame of a video (pixels),
    where the truth is known for every frame (the synthetic example's ``<video>_truth.csv``)."""
    points, _, names = keypoint_array(predictions)
    true_points, _, true_names = keypoint_array(truth)
    if true_names != names or len(truth) != len(predictions):
        raise ValueError(f"the truth has {len(truth)} frames of keypoints {true_names}, the predictions {len(predictions)} of {names}")
    return pd.DataFrame(np.linalg.norm(points - true_points, axis=-1), index=predictions.index, columns=names)


def pca_error(predictions: pd.DataFrame, pca, views: int = 1) -> pd.DataFrame:
    """Distance between each predicted keypoint and its reconstruction by the model's Pose PCA
    (:class:`~lightning_pose_lib.pca.PosePCA`, pixels). Single-view: how far the pose is from the
    plausible poses of the labels. Multiview (mirrored columns, or several cameras' views side by
    side): how far the views of each body part disagree with one 3D point, i.e. the multiview
    consistency error. NaN for keypoints the PCA does not cover. ``views`` > 1: the table holds
    that many cameras' keypoints side by side, and a single-view PCA applies to each view."""
    points, _, names = keypoint_array(predictions)
    if pca.kind == "singleview" and views > 1:
        points = points.reshape(len(points) * views, len(names) // views, 2)
    if pca.groups.max() >= points.shape[1]:
        raise ValueError(f"the {pca.kind} PCA uses keypoint {int(pca.groups.max())} but the predictions have {points.shape[1]} keypoints")
    return _per_keypoint(pca.reconstruction_error(points).reshape(len(predictions), len(names)), predictions, names)


def multiview_pca_error(view_tables: Sequence[pd.DataFrame], pca) -> list[pd.DataFrame]:
    """Multiview consistency error when each view has its own table (one CSV / video per view,
    equal frame counts). The views' keypoints are laid side by side, view 0's first, as in one
    mirrored table, so ``pca.groups`` index that layout (view v's keypoint k is v * K + k). Returns
    one error table per view."""
    if len(view_tables) < 2:
        raise ValueError("multiview_pca_error needs at least two views")
    first = view_tables[0]
    for v, table in enumerate(view_tables[1:], start=1):
        if len(table) != len(first) or not np.array_equal(np.asarray(table.index), np.asarray(first.index)):
            raise ValueError(f"view {v} has {len(table)} frames, view 0 has {len(first)}: views must describe the same frames")
    arrays = [keypoint_array(table) for table in view_tables]
    points = np.concatenate([a[0] for a in arrays], axis=1)
    names = [f"{v}:{name}" for v, a in enumerate(arrays) for name in a[2]]
    if pca.groups.max() >= len(names):
        raise ValueError(f"the multiview PCA uses keypoint {int(pca.groups.max())} but the views have {len(names)} keypoints together")
    errors = pca.reconstruction_error(points)
    out, start = [], 0
    for table, (_, _, view_names) in zip(view_tables, arrays):
        out.append(_per_keypoint(errors[:, start : start + len(view_names)], table, view_names))
        start += len(view_names)
    return out


def reprojection_error(view_tables: Sequence[pd.DataFrame], cameras) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Several calibrated cameras: each frame's keypoints triangulated from every view (DLT,
    :mod:`~lightning_pose_lib.calibration`) and reprojected. Returns per view the distance between
    its prediction and the reprojection (pixels), and the 3D points (columns keypoint x, y, z in
    the calibration's units)."""
    arrays = [keypoint_array(table) for table in view_tables]
    world, errors = triangulate_and_reproject(cameras, np.stack([a[0] for a in arrays]))
    names = arrays[0][2]
    points = pd.DataFrame(world.reshape(len(world), -1), index=view_tables[0].index,
                          columns=pd.MultiIndex.from_tuples([(n, c) for n in names for c in "xyz"], names=["bodyparts", "coords"]))
    return [_per_keypoint(e, table, names) for e, table in zip(errors, view_tables)], points


def stats(values) -> dict[str, float]:
    """Mean, median, standard deviation and count of the finite values (NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"mean": np.nan, "median": np.nan, "std": np.nan, "n": 0}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "std": float(values.std()), "n": int(len(values))}


def stats_by_set(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """:func:`stats` of a labeled metric table, per set present."""
    values = table.drop(columns="set")
    return {name: stats(values[table["set"] == name].to_numpy()) for name in SETS if (table["set"] == name).any()}


# --- Failed trainings -----------------------------------------------------------------------------

# A model whose validation error is above this fraction of the mean-pose baseline's has barely left
# the plateau where every frame gets about the mean pose (unconverged trainings on the generated
# example ended at 0.5-0.8 of the baseline, converged ones at 0.2-0.4).
UNCONVERGED_FRACTION_OF_BASELINE = 0.5
# A model whose validation error is this many times the median of its siblings' (the other seeds of
# its variant and sweep cell) failed where they did not.
FAILED_FACTOR_OF_SIBLINGS = 1.5


def unconverged_warning(metrics: dict[str, float], baseline: dict[str, float]) -> str | None:
    """One line saying the model has barely learned, or None. Validation error, else training."""
    for name in ("validation", "train"):
        key = f"{name}_pixel_error"
        if key in metrics and key in baseline:
            if metrics[key] > UNCONVERGED_FRACTION_OF_BASELINE * baseline[key]:
                return (f"{name} pixel error {metrics[key]:.2f} px is more than {UNCONVERGED_FRACTION_OF_BASELINE:g} of the "
                        f"mean-pose baseline's {baseline[key]:.2f} px: the model has barely learned; train longer "
                        "(training.max_epochs) or check the labels")
            return None
    return None


def failed_among_siblings(errors: pd.Series, groups: pd.Series) -> pd.Series:
    """True for each model whose error is above :data:`FAILED_FACTOR_OF_SIBLINGS` times the median
    of its group (models differing only by seed); groups of fewer than 3 models are not judged."""
    median = errors.groupby(groups).transform("median")
    size = errors.groupby(groups).transform("count")
    return (size >= 3) & (errors > FAILED_FACTOR_OF_SIBLINGS * median)


# --- Metric files -------------------------------------------------------------------------------

LABELED_METRICS = ("pixel_error", "pca_singleview_error", "pca_multiview_error")
VIDEO_METRICS = ("temporal_norm", "pca_singleview_error", "pca_multiview_error", "reprojection_error", "truth_error")
# Files beside the predictions that are no prediction tables: the metrics, and the 3D points of a
# calibrated multi-camera session.
METRIC_SUFFIXES = (*(f"_{m}.csv" for m in ("pixel_error", *VIDEO_METRICS)), "_3d.csv")


def metric_path(predictions_path: str | os.PathLike, metric: str) -> Path:
    """Where the metric of a predictions file lives: next to it, ``<stem>_<metric>.csv``."""
    path = Path(predictions_path)
    return path.with_name(f"{path.stem}_{metric}.csv")


def is_metric_file(path: str | os.PathLike) -> bool:
    return Path(path).name.endswith(METRIC_SUFFIXES)


def metrics_for(cfg: dict, labeled: bool) -> list[str]:
    """The metrics a model config asks for, on labeled frames or on a video."""
    data = cfg["data"]
    names = ["pixel_error"] if labeled else ["temporal_norm"]
    if data["columns_for_singleview_pca"]:
        names.append("pca_singleview_error")
    if data["mirrored_column_matches"] or data["view_names"]:
        names.append("pca_multiview_error")
    if data["calibration_file"] and not labeled:
        names.append("reprojection_error")
    return names


def truth_path(video: str | os.PathLike) -> Path:
    """The ground truth of every frame of a video, where there is one: ``<video stem>_truth.csv``
    beside the video (the synthetic example writes it)."""
    video = Path(video)
    return video.with_name(f"{video.stem}_truth.csv")


def read_metric(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)
