"""A FiftyOne dataset of one project dataset, to browse in the FiftyOne App.

Every labeled frame becomes a sample with its ground truth and each model's predictions as
FiftyOne keypoints (the likelihoods as confidences, the pixel error per keypoint as an attribute)
and its set (train, validation, test, unused) as field and tag. Optionally, frames sampled evenly
from the predicted videos become samples with each model's keypoints and the video metrics of
those frames. Saved views sort the frames by error, worst first.

FiftyOne is an optional extra (``pip install -e '.[fiftyone]'``) that runs its own MongoDB server;
its database lives in a folder of the project (``FIFTYONE_DATABASE_DIR``), not in ``~/.fiftyone``,
so that projects never share or overwrite each other's datasets. Nothing else imports this module.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..data.images import image_size
from ..data.labels import Labels
from ..errors import InputError
from ..io import atomic_path
from ..metrics import SET_COLUMN, VIDEO_METRICS, keypoint_array, metric_path, read_metric, read_predictions
from ..video import open_video

INSTALL = "FiftyOne is not installed (it is an optional extra): pip install -e '.[fiftyone]'"
WORST_LABELED = "worst_labeled_frames"
WORST_VIDEO = "jumpiest_video_frames"
GROUND_TRUTH = "ground_truth"


def import_fiftyone(database_dir: str | os.PathLike):
    """The ``fiftyone`` module with its database in ``database_dir``; usage statistics off unless
    the user asked for them (FiftyOne then never reaches the network). Raises :class:`InputError`
    with the install command when FiftyOne is missing."""
    database_dir = Path(database_dir).absolute()
    os.environ["FIFTYONE_DATABASE_DIR"] = str(database_dir)  # read when fiftyone is imported
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    # The bundled MongoDB 6.0 is supported; FiftyOne would print a deprecation notice at every start.
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone
    except ImportError:
        raise InputError(None, INSTALL) from None
    fiftyone.config.database_dir = str(database_dir)
    return fiftyone


@dataclass(frozen=True)
class ModelResults:
    """What one model contributes: its labeled-frame predictions and pixel errors, and per video
    its predictions and video metric tables ({metric: table})."""

    name: str
    predictions: pd.DataFrame
    pixel_error: pd.DataFrame
    videos: dict[str, tuple[pd.DataFrame, dict[str, pd.DataFrame]]]


def read_model_results(model_dir: str | os.PathLike, videos: list[str] = ()) -> ModelResults:
    """A model's results as evaluate.py left them under ``model_dir``: ``predictions.csv``,
    ``predictions_pixel_error.csv`` and, for each video stem, ``video_preds/<video>.csv`` with the
    metric tables next to it (those that exist)."""
    model_dir = Path(model_dir)
    predictions = read_predictions(model_dir / "predictions.csv")
    errors_path = metric_path(model_dir / "predictions.csv", "pixel_error")
    if not errors_path.is_file():
        raise InputError(errors_path, "pixel errors not found: evaluate the model first (evaluate.py)")
    per_video = {}
    for video in videos:
        table_path = model_dir / "video_preds" / f"{video}.csv"
        table = read_predictions(table_path)
        metrics = {m: read_metric(metric_path(table_path, m)) for m in VIDEO_METRICS if metric_path(table_path, m).is_file()}
        per_video[video] = (table, metrics)
    return ModelResults(model_dir.name, predictions, read_metric(errors_path), per_video)


def field_names(models: list[str]) -> dict[str, str]:
    """{model id: sample field}: FiftyOne field names are identifiers (no '=' or '.')."""
    fields = {m: re.sub(r"\W", "_", m) for m in models}
    reserved = {GROUND_TRUTH, "set", "pixel_error", "video", "frame", "frame_path"}
    clash = [m for m, f in fields.items() if f in reserved or list(fields.values()).count(f) > 1]
    if clash:
        raise InputError(None, f"models {clash} get the same FiftyOne field name as another model or field; rename them")
    return fields


def build_dataset(
    name: str,
    database_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    labels: Labels,
    models: list[ModelResults],
    video_paths: dict[str, str] | None = None,
    video_frames: int = 0,
    frames_dir: str | os.PathLike | None = None,
) -> dict:
    """Build (or rebuild: the dataset ``name`` is replaced) the persistent FiftyOne dataset.

    ``video_paths`` {stem: video file} with ``video_frames`` > 0 adds that many frames sampled
    evenly from each video, written as PNG under ``frames_dir/<video>/`` (FiftyOne shows image
    files). Returns the counts and field names, for the rule's summary file."""
    fo = import_fiftyone(database_dir)
    data_dir = Path(data_dir).absolute()
    fields = field_names([m.name for m in models])
    for model in models:
        if list(model.predictions.index) != labels.image_paths:
            raise InputError(None, f"the predictions of model {model.name} are not of the labeled frames {labels.image_paths[:1]}..., in their order")
    samples = _labeled_samples(fo, data_dir, labels, models, fields)
    video_samples = []
    if video_frames > 0 and video_paths:
        video_samples = _video_samples(fo, Path(frames_dir).absolute(), labels.keypoint_names, models, fields, video_paths, video_frames)

    dataset = fo.Dataset(name, overwrite=True)
    dataset.persistent = True
    dataset.default_skeleton = fo.KeypointSkeleton(labels=list(labels.keypoint_names), edges=[])
    dataset.info = {"models": {f: m for m, f in fields.items()}, "keypoints": list(labels.keypoint_names), "data_dir": str(data_dir)}
    dataset.add_samples(samples + video_samples, progress=False)
    labeled = dataset.exists("set")
    dataset.save_view(WORST_LABELED, labeled.sort_by("pixel_error", reverse=True), description="labeled frames, largest pixel error (mean over keypoints and models) first")
    if video_samples and dataset.has_sample_field("temporal_norm"):
        dataset.save_view(WORST_VIDEO, dataset.exists("video").sort_by("temporal_norm", reverse=True), description="sampled video frames, largest temporal norm (mean over keypoints and models) first")
    dataset.save()
    return {
        "dataset": name,
        "database_dir": str(Path(database_dir).absolute()),
        "labeled_frames": len(samples),
        "video_frames": len(video_samples),
        "models": {m: f for m, f in fields.items()},
        "views": dataset.list_saved_views(),
    }


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def _listed(values: np.ndarray) -> list:
    """A per-keypoint list for the database: NaN stays NaN (FiftyOne's 'no value' for keypoints)."""
    return [float(v) for v in values]


def _keypoints(fo, label: str, points: np.ndarray, size: tuple[int, int], confidence=None, **attributes):
    """One FiftyOne keypoint set; FiftyOne wants coordinates relative to the image, in [0, 1]."""
    height, width = size
    relative = [(float(x) / width, float(y) / height) for x, y in points]
    keypoint = fo.Keypoint(label=label, points=relative, **attributes)
    if confidence is not None:
        keypoint.confidence = _listed(confidence)
    return fo.Keypoints(keypoints=[keypoint])


def _labeled_samples(fo, data_dir: Path, labels: Labels, models: list[ModelResults], fields: dict[str, str]) -> list:
    sets = models[0].predictions[SET_COLUMN].to_numpy() if models else np.full(len(labels), "unused")
    predicted = {m.name: keypoint_array(m.predictions) for m in models}
    errors = {m.name: m.pixel_error.loc[labels.image_paths, labels.keypoint_names].to_numpy(dtype=np.float64) for m in models}
    samples = []
    for i, frame_path in enumerate(labels.image_paths):
        size = image_size(data_dir / frame_path)
        sample = fo.Sample(
            filepath=str(data_dir / frame_path), tags=["labeled", str(sets[i])],
            metadata=fo.ImageMetadata(height=size[0], width=size[1]),
        )
        sample["frame_path"] = frame_path
        sample["set"] = str(sets[i])
        sample[GROUND_TRUTH] = _keypoints(fo, "ground truth", labels.keypoints[i], size)
        means = []
        for model in models:
            points, likelihood, _ = predicted[model.name]
            error = errors[model.name][i]
            field = fields[model.name]
            sample[field] = _keypoints(fo, model.name, points[i], size, likelihood[i], pixel_error=_listed(error))
            sample[f"{field}_pixel_error"] = _mean(error)
            means.append(sample[f"{field}_pixel_error"])
        sample["pixel_error"] = _mean(np.array([np.nan if v is None else v for v in means], dtype=float))
        samples.append(sample)
    return samples


def sampled_frames(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over a video, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, min(count, num_frames))})


def _video_samples(fo, frames_dir: Path, names: list[str], models: list[ModelResults], fields: dict[str, str], video_paths: dict[str, str], count: int) -> list:
    samples = []
    for video, path in video_paths.items():
        with open_video(path, backend="pyav") as reader:
            info = reader.info
            indices = sampled_frames(info.num_frames, count)
            images = reader.read_frames(indices)
        size = (info.height, info.width)
        shutil.rmtree(frames_dir / video, ignore_errors=True)  # frames of an earlier build with other settings
        for index, image in zip(indices, images):
            target = frames_dir / video / f"{index:06d}.png"
            with atomic_path(target) as tmp:
                Image.fromarray(np.asarray(image)).save(tmp)
            sample = fo.Sample(filepath=str(target), tags=["video"], metadata=fo.ImageMetadata(height=size[0], width=size[1]))
            sample["video"] = video
            sample["frame"] = index
            means = {}
            for model in models:
                table, metrics = model.videos[video]
                if len(table) != info.num_frames:
                    raise InputError(path, f"has {info.num_frames} frames but the predictions of model {model.name} have {len(table)} rows")
                points, likelihood, _ = keypoint_array(table.iloc[[index]])
                values = {m: metrics[m][names].to_numpy(dtype=np.float64)[index] for m in metrics}
                field = fields[model.name]
                sample[field] = _keypoints(fo, model.name, points[0], size, likelihood[0], **{m: _listed(v) for m, v in values.items()})
                for metric, v in values.items():
                    sample[f"{field}_{metric}"] = _mean(v)
                    means.setdefault(metric, []).append(_mean(v))
            for metric, per_model in means.items():
                sample[metric] = _mean(np.array([np.nan if v is None else v for v in per_model], dtype=float))
            samples.append(sample)
    return samples


def open_app(name: str, database_dir: str | os.PathLike, port: int = 5151, address: str = "localhost"):
    """Serve the FiftyOne App on ``address:port`` with dataset ``name``, its worst labeled frames
    first; returns the session (``session.wait()`` keeps it open). No browser is started: open the
    printed address, locally or through an ssh tunnel."""
    fo = import_fiftyone(database_dir)
    if name not in fo.list_datasets():
        raise InputError(database_dir, f"no FiftyOne dataset {name!r} in this database (it has {fo.list_datasets()}); build it with the target fiftyone_{name} (add --forcerun fiftyone if the database was removed after a build)")
    dataset = fo.load_dataset(name)
    view = dataset.load_saved_view(WORST_LABELED) if dataset.has_saved_view(WORST_LABELED) else dataset
    return fo.launch_app(view, port=port, address=address, remote=True)
