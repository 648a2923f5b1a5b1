from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CSV_ROUNDING
from lightning_pose_lib.data.labels import pose_table, read_labels, read_pose_table, write_pose_table
from lightning_pose_lib.errors import InputError

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mirror-mouse-example"

GOOD = """scorer,me,me,me,me
bodyparts,nose,nose,tail,tail
coords,x,y,x,y
labeled-data/a/img0.png,1.5,2.5,,
labeled-data/a/img1.png,3,4,5,6
"""


def write(tmp_path, text, name="CollectedData.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parses_three_header_rows_and_nan(tmp_path):
    labels = read_labels(write(tmp_path, GOOD))
    assert labels.keypoint_names == ["nose", "tail"]
    assert labels.image_paths == ["labeled-data/a/img0.png", "labeled-data/a/img1.png"]
    assert labels.keypoints.shape == (2, 2, 2)
    assert labels.keypoints[0, 0].tolist() == [1.5, 2.5]
    assert np.isnan(labels.keypoints[0, 1]).all()
    assert labels.scorer == "me"


def test_first_row_all_nan_is_kept(tmp_path):
    text = GOOD.replace("labeled-data/a/img0.png,1.5,2.5,,", "labeled-data/a/img0.png,,,,")
    labels = read_labels(write(tmp_path, text))
    assert len(labels) == 2 and np.isnan(labels.keypoints[0]).all()


@pytest.mark.parametrize(
    "text, problem",
    [
        ("bodyparts,nose,nose\ncoords,x,y\nimg.png,1,2\n", "missing header row"),
        (GOOD.replace("coords,x,y,x,y", "coords,x,y,x,z"), "missing header row"),
        ("scorer,me,me,me\nbodyparts,nose,nose,tail\ncoords,x,y,x\nimg.png,1,2,3\n", "odd number of coordinate columns"),
        (GOOD.replace("3,4,5,6", "3,four,5,6"), "row 5, column 3 (nose y): 'four' is not a number"),
        ("scorer,me,me\nbodyparts,nose,nose\ncoords,x,y\n", "no labeled frames"),
        ("", "empty"),
    ],
)
def test_malformed_csv_names_file_and_problem(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_labels(path)
    assert str(path) in str(err.value)
    assert problem in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="label file not found"):
        read_labels(tmp_path / "nope.csv")


def test_pose_table_round_trip_csv_and_h5(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (7, 3, 2))
    likelihood = rng.uniform(0, 1, (7, 3))
    table = pose_table(points, ["a", "b", "c"], "heatmap_tracker", likelihood)
    write_pose_table(table, tmp_path / "v.csv", tmp_path / "v.h5")
    for path in (tmp_path / "v.csv", tmp_path / "v.h5"):
        back = read_pose_table(path)
        assert list(back.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
        assert list(back.columns.get_level_values("scorer").unique()) == ["heatmap_tracker"]
        np.testing.assert_allclose(back.to_numpy().reshape(7, 3, 3)[..., :2], points, atol=1e-4)
        assert list(back.index) == list(range(7))
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_h5_is_what_pandas_and_deeplabcut_read(tmp_path):
    """pd.read_hdf(path), no key, returns the CSV's table; stored as DeepLabCut stores predictions."""
    import tables

    rng = np.random.default_rng(1)
    points = rng.uniform(0, 400, (50, 4, 2)).astype(np.float32)
    likelihood = rng.uniform(0, 1, (50, 4)).astype(np.float32)
    points[3, 1] = np.nan
    points[7], likelihood[7] = np.nan, np.nan  # a frame with nothing: kept, not dropped
    table = pose_table(points, ["nose", "ear_l", "ear_r", "tail"], "heatmap_tracker", likelihood)
    write_pose_table(table, tmp_path / "v.csv", tmp_path / "v.h5")
    from_h5 = pd.read_hdf(tmp_path / "v.h5")
    from_csv = pd.read_csv(tmp_path / "v.csv", header=[0, 1, 2], index_col=0)
    pd.testing.assert_frame_equal(from_h5, from_csv, check_exact=False, rtol=0, atol=CSV_ROUNDING)  # the CSV keeps 4 decimals
    with pd.HDFStore(tmp_path / "v.h5", "r") as store:
        assert store.keys() == ["/df_with_missing"] and store.get_storer("df_with_missing").is_table
    with tables.open_file(tmp_path / "v.h5") as f:  # PyTables' own layout, not bare h5py arrays
        assert f.root.df_with_missing.table.nrows == 50


@pytest.mark.skipif(not MIRROR.exists(), reason="../shared/data/mirror-mouse-example absent")
def test_mirror_mouse_labels():
    labels = read_labels(MIRROR / "CollectedData.csv")
    assert len(labels) == 90 and labels.num_keypoints == 17
    assert np.isnan(labels.keypoints).any()
    assert (MIRROR / labels.image_paths[0]).exists()
