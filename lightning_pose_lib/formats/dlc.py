"""A DeepLabCut single-animal project: ``config.yaml`` (scorer, bodyparts, video_sets), one
``labeled-data/<session>/CollectedData_<scorer>.csv`` (or ``.h5``) per labeled session.

The sessions' labels are merged in the order of their folders' names, keypoints in the order of
the project's ``bodyparts`` (a body part a session lacks is unlabeled there). Image paths keep
DeepLabCut's form ``labeled-data/<session>/<image>``, so the imported folder links the project's
``labeled-data/``. Label files of either DeepLabCut layout are read: one path column, or three
index columns (``labeled-data``, session, image) as DeepLabCut 2.2 and later write.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd

from ..config import read_yaml
from ..data.labels import Labels
from ..errors import InputError

log = logging.getLogger(__name__)

MULTI_ANIMAL = "multi-animal DeepLabCut projects are not supported (only single-animal projects)"


def config_file(source: Path) -> Path:
    return source / "config.yaml" if source.is_dir() else source


@functools.lru_cache(maxsize=None)
def project(source: Path) -> dict:
    """The project's config, checked for what the import needs."""
    path = config_file(source)
    cfg = read_yaml(path)
    if cfg.get("multianimalproject"):
        raise InputError(path, f"multianimalproject is true: {MULTI_ANIMAL}")
    bodyparts = cfg.get("bodyparts")
    if not isinstance(bodyparts, list) or not bodyparts or not all(isinstance(b, str) for b in bodyparts):
        raise InputError(path, "bodyparts must be a list of names")
    if not isinstance(cfg.get("scorer"), str):
        raise InputError(path, "scorer (the name in CollectedData_<scorer>.csv) is missing")
    return cfg


def label_files(source: Path) -> list[Path]:
    """Each labeled session's ``CollectedData_<scorer>`` file, the CSV where there is one."""
    root = config_file(source).parent
    scorer = project(source)["scorer"]
    sessions = sorted(p for p in (root / "labeled-data").glob("*") if p.is_dir())
    files = []
    for session in sessions:
        for suffix in (".csv", ".h5"):
            path = session / f"CollectedData_{scorer}{suffix}"
            if path.is_file():
                files.append(path)
                break
    if not files:
        raise InputError(root / "labeled-data", f"no labeled session (no labeled-data/<session>/CollectedData_{scorer}.csv or .h5)")
    return files


def inputs(source: Path) -> list[Path]:
    return [config_file(source), *label_files(source)]


@functools.lru_cache(maxsize=None)
def _videos(source: Path) -> tuple[Path, ...]:
    """The project's videos (video_sets): where the config says, else in the project's videos/."""
    root = config_file(source).parent
    found, missing = [], []
    for entry in project(source).get("video_sets") or {}:
        path = Path(str(entry))
        # A project made on Windows names its videos with backslashes.
        here = [p for p in (path, root / "videos" / PureWindowsPath(str(entry)).name) if p.is_file()]
        (found if here else missing).append(here[0] if here else path)
    if missing:
        log.warning("%s: videos of video_sets not found (neither there nor in the project's videos/), not predicted: %s",
                    config_file(source), ", ".join(map(str, missing)))
    return tuple(found)


def videos(source: Path) -> list[Path]:
    return list(_videos(source))


def model_config(source: Path) -> dict:
    return {}


def write(source: Path, out_dir: Path) -> Labels:
    from . import link

    cfg = project(source)
    bodyparts = cfg["bodyparts"]
    paths, blocks = [], []
    for file in label_files(source):
        table = read_label_file(file)
        coords = np.full((len(table), len(bodyparts), 2), np.nan)
        for k, part in enumerate(bodyparts):
            for c, coord in enumerate("xy"):
                if (part, coord) in table.columns:
                    coords[:, k, c] = table[(part, coord)].to_numpy(dtype=float)
        extra = sorted(set(table.columns.get_level_values(0)) - set(bodyparts))
        if extra:
            log.warning("%s: body parts not in the project's bodyparts, left out: %s", file, ", ".join(extra))
        paths += list(table.index)
        blocks.append(coords)
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise InputError(config_file(source).parent / "labeled-data", f"images labeled in two label files: {', '.join(duplicates[:5])}")
    keypoints = np.concatenate(blocks)
    keypoints[np.isnan(keypoints).any(axis=-1)] = np.nan  # labeled means both coordinates
    link(config_file(source).parent / "labeled-data", out_dir / "labeled-data")
    return Labels(paths, keypoints, list(bodyparts), cfg["scorer"])


def read_label_file(path: Path) -> pd.DataFrame:
    """A DeepLabCut label file as a table: index = image paths ('/'-separated), columns =
    (bodypart, coord)."""
    if path.suffix == ".h5":
        try:
            table = pd.read_hdf(path)  # DeepLabCut's one key, df_with_missing
        except (KeyError, ValueError, OSError) as err:
            raise InputError(path, f"not a DeepLabCut label file ({err})") from None
        if "individuals" in table.columns.names:
            raise InputError(path, f"has an 'individuals' column level: {MULTI_ANIMAL}")
        index = ["/".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in table.index]
        columns = pd.MultiIndex.from_arrays([table.columns.get_level_values("bodyparts"), table.columns.get_level_values("coords")])
        return pd.DataFrame(table.to_numpy(dtype=float), index=[i.replace("\\", "/") for i in index], columns=columns)
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable CSV ({err})") from None
    first = [str(c).strip() for c in raw.iloc[:4, 0]]
    if len(first) > 1 and first[1] == "individuals":
        raise InputError(path, f"has an 'individuals' header row: {MULTI_ANIMAL}")
    if first[:3] != ["scorer", "bodyparts", "coords"] or len(raw) < 4:
        raise InputError(path, "expected DeepLabCut's three header rows (scorer, bodyparts, coords) and labeled frames")
    # Index columns: the first, and the empty header cells after it (DeepLabCut 2.2+ writes three).
    n_index = 1
    while n_index < raw.shape[1] and not raw.iloc[0, n_index].strip():
        n_index += 1
    body = raw.iloc[3:]
    index = ["/".join(c.strip() for c in row if c.strip()).replace("\\", "/") for row in body.iloc[:, :n_index].itertuples(index=False)]
    try:
        values = np.array([[float(c) if c.strip() else np.nan for c in row] for row in body.iloc[:, n_index:].itertuples(index=False)])
    except ValueError as err:
        raise InputError(path, f"a coordinate is not a number ({err})") from None
    columns = pd.MultiIndex.from_arrays([raw.iloc[1, n_index:].str.strip(), raw.iloc[2, n_index:].str.strip()])
    return pd.DataFrame(values.reshape(len(body), -1), index=index, columns=columns)
