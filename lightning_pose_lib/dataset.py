"""A dataset as the model config describes it: its labels, folders and the frame split."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.images import image_size
from .data.labels import Labels, read_labels
from .data.split import split_labels
from .errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """Labeled frames and their split. With several cameras (``data.view_names``), ``views`` holds
    each view's labels (rows aligned) and ``labels`` all views side by side, view 0's keypoints
    first, named ``<keypoint>_<view>``: the layout of a mirrored frame, so the split, the Pose
    PCAs and the metrics of labeled frames treat a multi-camera frame as one row."""

    data_dir: Path
    csv_path: Path
    labels: Labels
    sets: np.ndarray  # per labeled frame: train / validation / test / unused
    view_names: tuple[str, ...] = ()
    views: tuple[Labels, ...] = ()

    def rows(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.sets == name)

    @property
    def view_labels(self) -> tuple[Labels, ...]:
        """Each view's labels; a single view's are ``labels``."""
        return self.views or (self.labels,)


def resolve(base: Path, path: str | os.PathLike | None) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    return path if path.is_absolute() else base / path


def check_positions(csv_path: Path, labels: Labels, data_dir: Path) -> None:
    """Every labeled image must exist, and its labels lie in it. A label farther outside the image
    than half the image's size is an error (a typo, or coordinates of another image size); one
    nearer the edge, outside, gets a single warning with the count (a click just past the edge)."""
    outside, far = 0, None
    for i, path in enumerate(labels.image_paths):
        height, width = image_size(data_dir / path)
        x, y = labels.keypoints[i, :, 0], labels.keypoints[i, :, 1]
        with np.errstate(invalid="ignore"):
            beyond = np.maximum(np.maximum(-x / width, x / width - 1), np.maximum(-y / height, y / height - 1))
        if np.nanmax(beyond, initial=0.0) > 0.5:
            k = int(np.nanargmax(beyond))
            raise InputError(csv_path, f"row {i + 4} ({path}): {labels.keypoint_names[k]} at ({x[k]:g}, {y[k]:g}) lies far outside the {width}x{height} image")
        outside += int(np.sum(beyond > 0))
    if outside:
        log.warning("%s: %d labeled keypoints lie just outside their image (within half its size); they are kept", csv_path, outside)


def load_dataset(cfg: dict) -> Dataset:
    data = cfg["data"]
    if not data["data_dir"]:
        raise InputError("config", "data.data_dir is not set")
    data_dir = Path(data["data_dir"])
    if not data_dir.is_dir():
        raise InputError(data_dir, "dataset folder not found (data.data_dir)")
    if data["view_names"]:
        return _load_views(cfg, data_dir)
    csv_path = resolve(data_dir, data["csv_file"])
    labels = read_labels(csv_path)
    _check_keypoints(data, csv_path, labels)
    matches = data["mirrored_column_matches"]
    if matches:
        if len({len(view) for view in matches}) != 1 or len(matches) < 2:
            raise InputError("config", "data.mirrored_column_matches needs at least two views with equally many keypoints")
        bad = [i for view in matches for i in view if i >= labels.num_keypoints]
        if bad:
            raise InputError(csv_path, f"data.mirrored_column_matches names keypoint indices {bad} but the file has {labels.num_keypoints} keypoints")
    check_positions(csv_path, labels, data_dir)
    return Dataset(data_dir, csv_path, labels, _split(cfg, csv_path, len(labels)))


def _split(cfg: dict, csv_path: Path, n: int) -> np.ndarray:
    train = cfg["training"]
    try:
        return split_labels(n, train["train_prob"], train["val_prob"], train["rng_seed_data_pt"], train["train_frames"])
    except ValueError as err:
        raise InputError(csv_path, str(err)) from None


def _load_views(cfg: dict, data_dir: Path) -> Dataset:
    """Several cameras: one label CSV per view, row i the same instant in every file (the same
    image file name, in each view's folder)."""
    data = cfg["data"]
    paths = [resolve(data_dir, f) for f in data["csv_file"]]
    views = [read_labels(p) for p in paths]
    first = views[0]
    for path, labels in zip(paths, views):
        _check_keypoints(data, path, labels)
        if labels.keypoint_names != first.keypoint_names:
            raise InputError(path, f"keypoints {labels.keypoint_names} differ from {paths[0].name}'s {first.keypoint_names}: every view labels the same keypoints")
        if len(labels) != len(first):
            raise InputError(path, f"has {len(labels)} labeled frames but {paths[0].name} has {len(first)}: every view labels the same frames, row by row")
        for i, (mine, theirs) in enumerate(zip(labels.image_paths, first.image_paths)):
            if Path(mine).name != Path(theirs).name:
                raise InputError(path, f"row {i + 4} ({mine}) is not the frame of row {i + 4} in {paths[0].name} ({theirs}): rows must be aligned by frame")
        check_positions(path, labels, data_dir)
    names = [f"{k}_{v}" for v in data["view_names"] for k in first.keypoint_names]
    fused = Labels(first.image_paths, np.concatenate([v.keypoints for v in views], axis=1), names, first.scorer)
    return Dataset(data_dir, paths[0], fused, _split(cfg, paths[0], len(first)), tuple(data["view_names"]), tuple(views))


def _check_keypoints(data: dict, csv_path: Path, labels: Labels) -> None:
    if data["num_keypoints"] is not None and data["num_keypoints"] != labels.num_keypoints:
        raise InputError(csv_path, f"has {labels.num_keypoints} keypoints but data.num_keypoints is {data['num_keypoints']}")
    if data["keypoint_names"] is not None and list(data["keypoint_names"]) != labels.keypoint_names:
        raise InputError(csv_path, f"keypoint names {labels.keypoint_names} differ from data.keypoint_names {data['keypoint_names']}")
    for key in ("columns_for_singleview_pca",):
        bad = [i for i in data[key] or [] if i >= labels.num_keypoints]
        if bad:
            raise InputError(csv_path, f"data.{key} names keypoint indices {bad} but the file has {labels.num_keypoints} keypoints")
