"""Projects of other tools as datasets of this one, without touching the user's files.

A source is a DeepLabCut single-animal project (its folder or its ``config.yaml``), SLEAP labels
(``.slp`` / ``.pkg.slp``), or a Lightning Pose config file. :func:`import_dataset` writes a dataset
folder in this project's layout: ``CollectedData.csv`` (three header rows, image paths relative to
the folder), the images it names (links to the project's ``labeled-data/``, or frames extracted
from SLEAP's videos or package) and ``videos/`` (links to the project's videos). The label CSV is
written last, so its presence means the import finished.

Each format module (:mod:`.dlc`, :mod:`.sleap`, :mod:`.lightning_pose`) has the same functions:
``inputs(source)`` (the files the import reads: a change redoes it), ``videos(source)`` (the
project's videos that exist, cheap enough for the workflow to call while it plans), ``model_config
(source)`` (model config keys the project sets) and ``write(source, out_dir)`` (the images; returns
the :class:`~lightning_pose_lib.data.labels.Labels` with paths relative to ``out_dir``).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from ..config import read_yaml
from ..data.labels import pose_table
from ..errors import InputError
from ..io import atomic_path

CSV_FILE = "CollectedData.csv"
VIDEO_DIR = "videos"


def detect(source: str | os.PathLike) -> str:
    """``"deeplabcut"``, ``"sleap"`` or ``"lightning_pose"``, from the file's name and content."""
    source = Path(source)
    if source.is_dir():
        if (source / "config.yaml").is_file():
            return "deeplabcut"
        raise InputError(source, "a folder to import must be a DeepLabCut project (config.yaml not found in it)")
    if source.name.endswith(".slp"):
        if not source.is_file():
            raise InputError(source, "SLEAP labels file not found")
        return "sleap"
    if source.suffix in (".yaml", ".yml"):
        data = read_yaml(source)
        if "bodyparts" in data and "video_sets" in data:
            return "deeplabcut"
        if isinstance(data.get("data"), dict):
            return "lightning_pose"
        raise InputError(source, "neither a DeepLabCut project config (bodyparts, video_sets) nor a Lightning Pose config (a data section)")
    raise InputError(source, "cannot import this: name a DeepLabCut project (folder or config.yaml), SLEAP labels (.slp, .pkg.slp) or a Lightning Pose config (.yaml)")


def module(source: str | os.PathLike) -> ModuleType:
    from . import dlc, lightning_pose, sleap

    return {"deeplabcut": dlc, "sleap": sleap, "lightning_pose": lightning_pose}[detect(source)]


def inputs(source: str | os.PathLike) -> list[str]:
    return [str(p) for p in module(source).inputs(Path(source))]


def videos(source: str | os.PathLike) -> list[Path]:
    return module(source).videos(Path(source))


def model_config(source: str | os.PathLike) -> dict:
    return module(source).model_config(Path(source))


def import_dataset(source: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the dataset folder ``out_dir`` from ``source``; returns its label CSV."""
    source, out_dir = Path(source), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = module(source).write(source, out_dir)
    video_dir = out_dir / VIDEO_DIR
    video_dir.mkdir(exist_ok=True)
    for old in video_dir.iterdir():
        if old.is_symlink():
            old.unlink()
    for video in videos(source):
        link(video, video_dir / video.name)
    csv_file = out_dir / CSV_FILE
    table = pose_table(labels.keypoints, labels.keypoint_names, labels.scorer, index=labels.image_paths)
    with atomic_path(csv_file) as tmp:
        table.to_csv(tmp)
    return csv_file


def link(target: Path, name: Path) -> None:
    """A symbolic link ``name`` -> ``target`` (absolute), replacing an earlier link."""
    name.parent.mkdir(parents=True, exist_ok=True)
    if name.is_symlink():
        name.unlink()
    elif name.exists():
        raise InputError(name, "exists and is not a link; remove it to import again")
    os.symlink(Path(target).resolve(), name)
