"""Label CSVs in the DeepLabCut / Lightning Pose layout, and prediction tables in the same layout.

A label CSV has three header rows (scorer, bodyparts, coords = x, y, x, y, ...), then one row per
labeled frame: the image path relative to the dataset folder, then the coordinates; an empty cell
is a keypoint that was not labeled (NaN). Prediction tables use coords x, y, likelihood.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import atomic_path, write_csv

log = logging.getLogger(__name__)

# The HDF5 key of DeepLabCut's label and prediction files.
H5_KEY = "df_with_missing"


@dataclass(frozen=True)
class Labels:
    """Labeled frames: ``keypoints[i, k] = (x, y)`` in original image pixels, NaN when not labeled."""

    image_paths: list[str]
    keypoints: np.ndarray  # (N, K, 2) float64
    keypoint_names: list[str]
    scorer: str

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def __len__(self) -> int:
        return len(self.image_paths)


def read_labels(csv_path: str | os.PathLike) -> Labels:
    """Parse a label CSV, or raise :class:`InputError` naming the file and what is wrong."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "label file not found")
    try:
        raw = pd.read_csv(csv_path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(csv_path, f"not a readable CSV ({err})") from None
    except pd.errors.EmptyDataError:
        raise InputError(csv_path, "the file is empty") from None
    if len(raw) < 3 or raw.shape[1] < 3:
        raise InputError(csv_path, "expected three header rows (scorer, bodyparts, coords) and at least one keypoint")
    coords = [c.strip() for c in raw.iloc[2, 1:]]
    bodyparts = [b.strip() for b in raw.iloc[1, 1:]]
    scorers = [s.strip() for s in raw.iloc[0, 1:]]
    if set(coords) - {"x", "y"} or raw.iloc[2, 0].strip() != "coords" or raw.iloc[1, 0].strip() != "bodyparts":
        raise InputError(
            csv_path,
            "missing header row: rows 2 and 3 must start with 'bodyparts' and 'coords', and coords must be x, y "
            f"(found first cells {raw.iloc[0, 0]!r}, {raw.iloc[1, 0]!r}, {raw.iloc[2, 0]!r})",
        )
    if len(coords) % 2:
        raise InputError(csv_path, f"odd number of coordinate columns ({len(coords)}): every keypoint needs x and y")
    names: list[str] = []
    for k in range(0, len(coords), 2):
        if coords[k : k + 2] != ["x", "y"] or bodyparts[k] != bodyparts[k + 1]:
            raise InputError(
                csv_path, f"columns {k + 2} and {k + 3} must be the x and y of one keypoint (got {bodyparts[k]!r}/{coords[k]}, {bodyparts[k + 1]!r}/{coords[k + 1]})"
            )
        names.append(bodyparts[k])
    if len(set(names)) != len(names):
        raise InputError(csv_path, "keypoint names must be unique")
    body = raw.iloc[3:]
    if body.empty:
        raise InputError(csv_path, "no labeled frames after the three header rows")
    paths = [p.strip() for p in body.iloc[:, 0]]
    if any(not p for p in paths):
        row = 4 + [not p for p in paths].index(True)
        raise InputError(csv_path, f"row {row}: empty image path")
    first_row: dict[str, int] = {}
    for i, path in enumerate(paths):
        if path in first_row:  # two labelings of one frame: which one is right is the user's call
            raise InputError(csv_path, f"rows {first_row[path] + 4} and {i + 4} both label {path}")
        first_row[path] = i
    values = np.full((len(body), len(coords)), np.nan)
    for i, row in enumerate(body.iloc[:, 1:].itertuples(index=False)):
        for j, cell in enumerate(row):
            cell = cell.strip()
            if cell and cell.lower() != "nan":
                try:
                    values[i, j] = float(cell)
                except ValueError:
                    raise InputError(
                        csv_path, f"row {i + 4}, column {j + 2} ({names[j // 2]} {coords[j]}): {cell!r} is not a number"
                    ) from None
                if not np.isfinite(values[i, j]):
                    raise InputError(csv_path, f"row {i + 4}, column {j + 2} ({names[j // 2]} {coords[j]}): {cell!r} is not a finite number")
    keypoints = values.reshape(len(body), len(names), 2)
    # A keypoint counts as labeled only when both coordinates are present.
    keypoints[np.isnan(keypoints).any(axis=-1)] = np.nan
    never = [name for name, labeled in zip(names, (~np.isnan(keypoints[..., 0])).any(axis=0)) if not labeled]
    if never:
        log.warning("%s: %d of %d keypoints are labeled in none of the %d frames (%s); the model learns nothing about them", csv_path, len(never), len(names), len(body), ", ".join(never))
    return Labels(paths, keypoints, names, scorers[0] if scorers else "")


def pose_table(
    keypoints: np.ndarray,
    keypoint_names: list[str],
    scorer: str,
    likelihood: np.ndarray | None = None,
    index: list | np.ndarray | None = None,
) -> pd.DataFrame:
    """A table in the label layout: columns (scorer, bodyparts, coords), coords x, y[, likelihood]."""
    n, k, _ = keypoints.shape
    parts = [keypoints[..., 0], keypoints[..., 1]]
    coords = ["x", "y"]
    if likelihood is not None:
        parts.append(likelihood)
        coords.append("likelihood")
    data = np.stack(parts, axis=-1).reshape(n, k * len(coords))
    columns = pd.MultiIndex.from_tuples(
        [(scorer, name, c) for name in keypoint_names for c in coords], names=["scorer", "bodyparts", "coords"]
    )
    return pd.DataFrame(data, columns=columns, index=index if index is not None else np.arange(n))


def write_pose_table(table: pd.DataFrame, csv_path: str | os.PathLike, h5_path: str | os.PathLike | None = None) -> None:
    """Write a pose table as CSV (and HDF5 as DeepLabCut writes its predictions: pandas' PyTables
    "table" format under the key ``df_with_missing``, so ``pd.read_hdf(h5_path)`` returns the
    table), atomically."""
    write_csv(table, csv_path)
    if h5_path is not None:
        with atomic_path(h5_path) as tmp:
            # float64, as pd.read_csv returns the CSV's values
            table.astype(np.float64).to_hdf(tmp, key=H5_KEY, format="table", mode="w")


def write_pose_tables(tables: list[tuple]) -> None:
    """Several (table, csv_path, h5_path or None) in order (so the last file's presence means
    all are there); a function of this light module so a writer process can run it."""
    for table, csv_path, h5_path in tables:
        write_pose_table(table, csv_path, h5_path)


def read_pose_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or HDF5 pose table written by :func:`write_pose_table`."""
    path = Path(path)
    if path.suffix == ".h5":
        return pd.read_hdf(path, key=H5_KEY)
    table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    # pandas names the empty header cells of the trailing ("set", "", "") column "Unnamed: ..."
    table.columns = pd.MultiIndex.from_tuples(
        [tuple("" if str(level).startswith("Unnamed:") else level for level in column) for column in table.columns],
        names=table.columns.names,
    )
    return table
