"""A Lightning Pose project config (the ``config.yaml`` that ``litpose train`` takes).

Its sections are the ones this project's model config has (data, training, model, dali, losses,
eval), so every key both know is taken as it is; the keys this project does not have (hydra,
callbacks, detector, ...) and the values it does not accept are listed in one warning. ``data.data_dir`` (relative paths from the
config file's folder, else the working directory), ``data.csv_file`` and ``data.video_dir`` say
where the project is: the imported folder links the folders the labels' image paths start with,
and the videos.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import jsonschema

from .. import config as model_configs
from ..config import read_yaml
from ..data.labels import Labels, read_labels
from ..video import list_videos
from ..errors import InputError

log = logging.getLogger(__name__)

PATH_KEYS = ("data_dir", "csv_file", "video_dir")  # where the project is; the import sets these


@functools.lru_cache(maxsize=None)
def _paths(source: Path) -> tuple[Path, Path, Path | None]:
    """(data_dir, csv_file, video_dir or None) of the project."""
    data = read_yaml(source).get("data") or {}
    raw = data.get("data_dir")
    if not isinstance(raw, str):
        raise InputError(source, "data.data_dir (the project's folder) is missing")
    candidates = [Path(raw)] if Path(raw).is_absolute() else [source.parent / raw, Path.cwd() / raw]
    data_dir = next((p for p in candidates if p.is_dir()), None)
    if data_dir is None:
        raise InputError(source, f"data.data_dir {raw!r} not found (tried {', '.join(map(str, candidates))})")
    csv_file = data.get("csv_file", "CollectedData.csv")
    if not isinstance(csv_file, str):
        raise InputError(source, "data.csv_file: a multiview project (a list of label files) is not imported; use its folder as a dataset's data_dir with csv_file as this list and model_config data.view_names (README: several synchronized cameras)")
    video_dir = data.get("video_dir")
    return data_dir, data_dir / csv_file, None if not video_dir else data_dir / video_dir


def inputs(source: Path) -> list[Path]:
    return [source, _paths(source)[1]]


def videos(source: Path) -> list[Path]:
    video_dir = _paths(source)[2]
    return [Path(v) for v in list_videos(video_dir)] if video_dir is not None and video_dir.is_dir() else []


def _split(upstream: dict, schema: dict, prefix: str = "") -> tuple[dict, list[str]]:
    """(the keys the schema knows, dotted names of those it does not)."""
    known, ignored = {}, []
    properties = schema.get("properties", {})
    for key, value in upstream.items():
        name = f"{prefix}{key}"
        child = properties.get(key)
        if child is None:
            ignored.append(name)
        elif isinstance(value, dict) and "properties" in child:
            known[key], more = _split(value, child, f"{name}.")
            ignored += more
        else:
            known[key] = value
    return known, ignored


@functools.lru_cache(maxsize=None)
def _model_config(source: Path) -> tuple[dict, tuple[str, ...]]:
    upstream = read_yaml(source)
    data = dict(upstream.get("data") or {})
    for key in PATH_KEYS:
        data.pop(key, None)
    known, ignored = _split({**upstream, "data": data}, model_configs.schema())
    # A value this project does not accept (a model type or loss it does not have) is left out too,
    # so that the dataset's model_config can set what to use instead.
    for error in jsonschema.Draft202012Validator(model_configs.schema()).iter_errors(known):
        *parents, leaf = error.absolute_path
        node = known
        for key in parents:
            node = node[key]
        if leaf in node:
            ignored.append(f"{'.'.join(map(str, (*parents, leaf)))}: {node.pop(leaf)!r} (not a value this project accepts)")
    if ignored:
        log.warning("%s: keys with no effect here (this project has no such setting): %s", source, ", ".join(ignored))
    return known, tuple(ignored)


def model_config(source: Path) -> dict:
    return _model_config(source)[0]


def write(source: Path, out_dir: Path) -> Labels:
    from . import CSV_FILE, VIDEO_DIR, link

    data_dir, csv_file, _ = _paths(source)
    labels = read_labels(csv_file)
    # The image paths are relative to data_dir: link the entries they start from.
    for top in sorted({Path(p).parts[0] for p in labels.image_paths}):
        if top in (CSV_FILE, VIDEO_DIR):  # the names the import writes
            raise InputError(csv_file, f"image paths under {top!r} cannot be imported; move the images to labeled-data/")
        if not (data_dir / top).exists():
            raise InputError(csv_file, f"image paths start with {top!r}, which is not in {data_dir}")
        link(data_dir / top, out_dir / top)
    return labels
