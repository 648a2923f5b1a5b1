"""Atomic file output: a killed job never leaves a file that looks complete.

Every writer in the library goes through :func:`atomic_path`: it hands out a temporary name in the
target's directory and renames it onto the target only when the block finished without error.
Tables go through :func:`write_csv`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError


# A read-only, full or misnamed destination: the user's to fix, reported with the file's name.
WRITE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary name keeps the target's suffix (libraries such as h5py and PyAV pick the
    format from it) and starts with a dot so that globs for results do not match it.
    """
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp)
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are shared on clusters
        os.replace(tmp, target)
    except OSError as err:
        if err.errno not in WRITE_ERRORS:  # not about writing here (e.g. a download that failed): the caller's to report
            raise
        raise InputError(target, f"cannot write ({err.strerror or err})") from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def remove_leftovers(target: str | os.PathLike) -> None:
    """Remove the temporary files of ``target`` (names as :func:`atomic_path` makes them) that a
    killed job left behind; every write of ``target`` does this first. Two processes never write
    one file at the same time, so a temporary file of ``target`` found here is a dead one's."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.stem)}\.[a-z0-9_]{{8}}\.tmp{re.escape(target.suffix)}")
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name):
                Path(entry.path).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_csv(table: pd.DataFrame, target: str | os.PathLike, decimals: int = 4) -> None:
    """``table.to_csv(target, float_format=f"%.{decimals}f")``, atomically, and the same bytes.

    A table of float columns with a plain integer index (predictions and metrics of videos: one
    row per frame) is formatted here in array arithmetic instead of by pandas' writer, which
    formats cell by cell in Python: for a 1,000-frame table of 17 keypoints, about 60 ms a table
    on a fast core, and prediction writes one for every video (three for a context model), more
    CPU than the GPU spends on the video. Other tables go through pandas."""
    with atomic_path(target) as tmp:
        data = _fast_csv(table, decimals)
        if data is None:
            table.to_csv(tmp, float_format=f"%.{decimals}f")
        else:
            tmp.write_bytes(data)


def _fast_csv(table: pd.DataFrame, decimals: int) -> bytes | None:
    """What pandas writes for ``table``, or None where this writer does not know: non-float
    columns, a named or non-integer index, header text CSV would quote, values that are infinite
    or too large for exact integer arithmetic, a platform whose line end is not a newline."""
    import pandas as pd  # here: the entry scripts import this module before they need pandas

    if os.linesep != "\n" or table.index.name is not None or not pd.api.types.is_integer_dtype(table.index.dtype):
        return None
    if not len(table.columns) or not all(pd.api.types.is_float_dtype(dtype) for dtype in table.dtypes):
        return None
    columns = table.columns
    if isinstance(columns, pd.MultiIndex):
        headers = [[name or "", *map(str, columns.get_level_values(level))] for level, name in enumerate(columns.names)]
    else:
        headers = [["", *map(str, columns)]]
    if any(q in cell for row in headers for cell in row for q in (",", '"', "\n", "\r")):
        return None
    header = "".join(",".join(row) + "\n" for row in headers).encode()
    values = table.to_numpy(dtype=np.float64)
    if not len(values):
        return header
    scaled = np.abs(values) * 10.0**decimals
    if np.any(np.isinf(values)) or np.nanmax(scaled, initial=0.0) >= 2.0**52:
        return None
    digits = np.rint(np.nan_to_num(scaled)).astype(np.int64)
    # Where the scaled product lies too near a rounding tie to trust, take Python's digits.
    with np.errstate(invalid="ignore"):
        doubtful = np.abs(scaled - np.floor(scaled) - 0.5) <= 1e-9 * np.maximum(scaled, 1e3)
    for i in zip(*np.nonzero(doubtful)):
        digits[i] = int(("%.*f" % (decimals, abs(values[i]))).replace(".", ""))
    index = np.asarray(table.index, dtype=np.int64)[:, None]
    rows = [_fixed_fields(np.abs(index), np.signbit(index), np.zeros(index.shape, dtype=bool), 0),
            _fixed_fields(digits, np.signbit(values), np.isnan(values), decimals)]
    rows[-1][0][:, -1, -1] = ord("\n")  # the last cell ends its row
    chars = np.concatenate([c.reshape(len(c), -1) for c, _ in rows], axis=1)
    keep = np.concatenate([k.reshape(len(k), -1) for _, k in rows], axis=1)
    return header + chars[keep].tobytes()


def _fixed_fields(digits: np.ndarray, negative: np.ndarray, empty: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """ASCII of ``"%.{decimals}f"`` and a comma for integers ``digits`` (the values times
    10**decimals, made non-negative; ``negative``: a minus sign), as fixed-width fields (...,
    width) with a mask of the characters kept (leading zeros dropped; ``empty`` cells keep only
    their comma)."""
    places = decimals + max(1, len(str(int(digits.max(initial=0)) // 10**decimals)))
    # Digit by digit from the last, dividing by the number 10 (numpy divides fast by a scalar).
    rest = digits.astype(np.int32 if digits.max(initial=0) < 2**31 else np.int64)
    figures = np.empty(digits.shape + (places,), dtype=np.uint8)
    for place in range(places - 1, -1, -1):
        figures[..., place] = rest % 10
        rest //= 10
    figures += ord("0")
    # Leading zeros go, but for the one before the decimal point.
    significant = np.cumsum(figures[..., : places - decimals - 1] != ord("0"), axis=-1) > 0
    parts = [np.full(digits.shape + (1,), ord("-"), dtype=np.uint8), figures[..., : places - decimals]]
    keeps = [negative[..., None], significant, np.ones(digits.shape + (1,), dtype=bool)]
    if decimals:
        parts += [np.full(digits.shape + (1,), ord("."), dtype=np.uint8), figures[..., places - decimals :]]
        keeps += [np.ones(digits.shape + (decimals + 1,), dtype=bool)]
    chars = np.concatenate([*parts, np.full(digits.shape + (1,), ord(","), dtype=np.uint8)], axis=-1)
    keep = np.concatenate([np.concatenate(keeps, axis=-1) & ~empty[..., None], np.ones(digits.shape + (1,), dtype=bool)], axis=-1)
    return chars, keep
