"""lightning_pose_lib.io: atomic output, and CSV tables written as pandas writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_pose_lib.data.labels import pose_table, read_pose_table
from lightning_pose_lib.io import _fast_csv, atomic_path, write_csv, write_text_atomic


def test_a_write_removes_the_temporary_files_a_killed_write_of_the_same_file_left(tmp_path):
    left = [tmp_path / ".out.k1ll3d_x.tmp.csv", tmp_path / ".out.zzzzzzzz.tmp.csv"]  # as atomic_path names them
    others = [tmp_path / ".out.b.k1ll3d_x.tmp.csv", tmp_path / ".out.k1ll3d_x.tmp.h5", tmp_path / ".other.k1ll3d_x.tmp.csv"]
    for path in left + others:
        path.write_text("half")
    write_text_atomic(tmp_path / "out.csv", "whole\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.csv", *(p.name for p in others)])


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def awkward_values(rng, shape) -> np.ndarray:
    """Random pixels with the cases fixed-point formatting gets wrong most easily."""
    values = rng.random(shape) * 400
    flat = values.reshape(-1)
    flat[:12] = [np.nan, -0.0, -0.00001, 0.00005, 0.00015, 1.23445, 2.5e-5, 1e9, -12345.67895, 0.0, 9.99995, -0.5]
    ties = flat[12 : len(flat) // 2]
    ties[:] = np.round(rng.normal(size=len(ties)) * 1000, 5)  # exactly on ties, as decimals go
    return values


@pytest.mark.parametrize("decimals", [4, 2, 0])
def test_csv_is_the_bytes_pandas_writes(decimals):
    rng = np.random.default_rng(0)
    table = pose_table(awkward_values(rng, (600, 17, 2)), [f"kp{k}" for k in range(17)], "scorer", rng.random((600, 17)))
    flat = pd.DataFrame(awkward_values(rng, (300, 5)), columns=list("abcde"), index=np.arange(-20, 280))
    for t in (table, flat, table.iloc[:0]):
        data = _fast_csv(t, decimals)
        assert data is not None and data == t.to_csv(float_format=f"%.{decimals}f").encode()


def test_csv_of_other_tables_goes_through_pandas(tmp_path):
    rng = np.random.default_rng(1)
    strings = pose_table(rng.random((3, 2, 2)), ["a", "b"], "s", index=["img0.png", "img1.png", "img2.png"])
    mixed = pd.DataFrame({"x": [0.5, 1.25], "set": ["train", "test"]})
    quoted = pd.DataFrame({"a,b": [0.5, 1.0]})
    infinite = pd.DataFrame({"a": [np.inf, 1.0]})
    for table in (strings, mixed, quoted, infinite):
        assert _fast_csv(table, 4) is None
        write_csv(table, tmp_path / "t.csv")
        assert (tmp_path / "t.csv").read_text() == table.to_csv(float_format="%.4f")


def test_prediction_table_reads_back(tmp_path):
    rng = np.random.default_rng(2)
    keypoints = rng.random((50, 3, 2)) * 300
    keypoints[4, 1] = np.nan
    table = pose_table(keypoints, ["nose", "ear", "tail"], "heatmap_tracker", rng.random((50, 3)))
    write_csv(table, tmp_path / "video.csv")
    back = read_pose_table(tmp_path / "video.csv")
    assert back.columns.equals(table.columns) and back.index.equals(table.index)
    np.testing.assert_allclose(back.to_numpy(), table.to_numpy(), atol=5e-5)
