"""Metrics computed from saved predictions; one function per formula.

Each per-frame metric is a table with one row per frame and one column per keypoint (NaN where it
does not apply), plus a ``set`` column for labeled frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data.labels import Labels

SET_COLUMN = ("set", "", "")


def keypoint_array(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, K, 2) coordinates, (N, K) likelihoods and names from a prediction table."""
    columns = table.drop(columns=[SET_COLUMN], errors="ignore").columns
    names = list(dict.fromkeys(columns.get_level_values("bodyparts")))
    values = table[columns].to_numpy(dtype=np.float64).reshape(len(table), len(names), -1)
    likelihood = values[..., 2] if values.shape[-1] > 2 else np.ones(values.shape[:2])
    return values[..., :2], likelihood, names


def pixel_error(predictions: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """Euclidean distance between prediction and label, per labeled frame and keypoint (pixels)."""
    pred, _, names = keypoint_array(predictions)
    if names != labels.keypoint_names or list(predictions.index) != labels.image_paths:
        raise ValueError("predictions and labels describe different frames or keypoints")
    error = pd.DataFrame(np.linalg.norm(pred - labels.keypoints, axis=-1), index=predictions.index, columns=names)
    if SET_COLUMN in predictions.columns:
        error["set"] = predictions[SET_COLUMN].to_numpy()
    return error


def mean_pose_baseline(labels: Labels, sets: np.ndarray) -> pd.DataFrame:
    """The trivial baseline: every frame gets the mean training pose; its pixel error table."""
    mean_pose = np.nanmean(labels.keypoints[sets == "train"], axis=0)
    error = pd.DataFrame(np.linalg.norm(mean_pose[None] - labels.keypoints, axis=-1), index=labels.image_paths, columns=labels.keypoint_names)
    error["set"] = sets
    return error


def summarize_pixel_error(error: pd.DataFrame) -> dict[str, float]:
    """Mean pixel error over labeled keypoints, per set: {"validation_pixel_error": ..., ...}."""
    out = {}
    for name, rows in error.groupby("set"):
        values = rows.drop(columns="set").to_numpy(dtype=np.float64)
        if np.isfinite(values).any():
            out[f"{name}_pixel_error"] = float(np.nanmean(values))
    return out


def temporal_norm(predictions: pd.DataFrame) -> pd.DataFrame:
    """Distance each keypoint moved since the previous frame (pixels); the first row is NaN."""
    points, _, names = keypoint_array(predictions)
    jumps = np.full(points.shape[:2], np.nan)
    jumps[1:] = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    return pd.DataFrame(jumps, index=predictions.index, columns=names)
