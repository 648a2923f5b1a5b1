"""Tests for the synthetic example generator (lightning_pose_lib.example) and its script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from lightning_pose_lib.data.labels import read_labels
from lightning_pose_lib.example import (
    KEYPOINTS,
    PART_COLOURS,
    make_background,
    make_example,
    project_keypoints,
    render_frame,
    simulate_trajectory,
)
from lightning_pose_lib.video import open_video, probe_video

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(n_sessions=2, frames_per_session=40, n_labeled=12, missing_prob=0.2)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_example(tmp_path_factory.mktemp("example"), seed=0, **SMALL)


def read_truth(path: str) -> np.ndarray:
    """(frames, keypoints, 2) from a truth CSV."""
    table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    return np.stack([table.xs("x", axis=1, level=2), table.xs("y", axis=1, level=2)], axis=-1)


def test_same_seed_same_files_other_seed_other_labels(example: dict, tmp_path: Path) -> None:
    again = make_example(tmp_path / "again", seed=0, **SMALL)
    for key in ("csv_file", "example_yaml"):
        assert Path(again[key]).read_bytes() == Path(example[key]).read_bytes()
    for mine, theirs in zip(again["videos"] + again["truth_files"], example["videos"] + example["truth_files"]):
        assert Path(mine).read_bytes() == Path(theirs).read_bytes()
    other = make_example(tmp_path / "other", seed=1, **SMALL)
    assert Path(other["csv_file"]).read_bytes() != Path(example["csv_file"]).read_bytes()


def test_label_csv_layout(example: dict) -> None:
    lines = Path(example["csv_file"]).read_text().splitlines()
    assert [line.split(",")[0] for line in lines[:3]] == ["scorer", "bodyparts", "coords"]
    assert lines[3].startswith("labeled-data/session0/img000000")

    table = pd.read_csv(example["csv_file"], header=[0, 1, 2], index_col=0)
    assert len(table) == 12
    assert list(table.columns.get_level_values(1)[::2]) == KEYPOINTS
    assert list(table.columns.get_level_values(2)) == ["x", "y"] * len(KEYPOINTS)
    values = table.to_numpy().reshape(len(table), len(KEYPOINTS), 2)
    missing = np.isnan(values)
    assert missing.any(), "missing_prob=0.2 should leave some keypoints unlabeled"
    assert (missing[..., 0] == missing[..., 1]).all(), "x and y are missing together"
    cells = pd.read_csv(example["csv_file"], header=None, skiprows=3, dtype=str, keep_default_na=False)
    assert np.array_equal(cells.iloc[:, 1:].to_numpy() == "", missing.reshape(len(table), -1)), "missing = empty cell"
    assert np.array_equal(np.round(values[~missing], 2), values[~missing])

    labels = read_labels(example["csv_file"])  # the library's own parser accepts it
    assert labels.keypoint_names == KEYPOINTS and len(labels) == 12


def test_labels_are_the_truth_at_labeled_frames(example: dict) -> None:
    table = pd.read_csv(example["csv_file"], header=[0, 1, 2], index_col=0)
    truths = [read_truth(path) for path in example["truth_files"]]
    for image_path, row in zip(table.index, table.to_numpy()):
        session = int(image_path.split("/")[1].removeprefix("session"))
        frame = int(Path(image_path).stem.removeprefix("img"))
        labeled = row.reshape(len(KEYPOINTS), 2)
        present = ~np.isnan(labeled)
        np.testing.assert_allclose(labeled[present], truths[session][frame][present], atol=0.006)


def test_truth_files_cover_every_frame_inside_the_frame(example: dict) -> None:
    height, width = example["image_height"], example["image_width"]
    for video, truth_file in zip(example["videos"], example["truth_files"]):
        info = probe_video(video)
        assert (info.num_frames, info.height, info.width, info.fps) == (40, height, width, 30.0)
        lines = Path(truth_file).read_text().splitlines()
        assert [line.split(",")[0] for line in lines[:4]] == ["scorer", "bodyparts", "coords", "0"]
        table = pd.read_csv(truth_file, header=[0, 1, 2], index_col=0)
        assert list(table.index) == list(range(info.num_frames))
        assert (table.xs("likelihood", axis=1, level=2) == 1.0).all().all()
        keypoints = read_truth(truth_file)
        top, bottom = keypoints[:, : len(KEYPOINTS) // 2], keypoints[:, len(KEYPOINTS) // 2 :]
        assert (top[..., 0] >= 0).all() and (top[..., 0] <= width / 2 - 1).all()  # left half
        assert (bottom[..., 0] >= width / 2).all() and (bottom[..., 0] <= width - 1).all()  # right half
        assert (keypoints[..., 1] >= 0).all() and (keypoints[..., 1] <= height - 1).all()
        # Smooth motion: no keypoint jumps far between consecutive frames.
        assert np.linalg.norm(np.diff(keypoints, axis=0), axis=-1).max() < 8


def test_views_are_linearly_related(example: dict) -> None:
    """(x_top, y_top, x_bot, y_bot) of all parts lie in one 3D affine subspace (multiview PCA)."""
    keypoints = read_truth(example["truth_files"][0])
    matches = example["mirrored_column_matches"]
    stacked = np.concatenate([keypoints[:, matches[0]], keypoints[:, matches[1]]], axis=-1).reshape(-1, 4)
    singular = np.linalg.svd(stacked - stacked.mean(axis=0), compute_uv=False)
    assert singular[3] < 1e-3 * singular[2]


def test_labeled_images_are_decoded_video_frames(example: dict) -> None:
    out_dir = Path(example["out_dir"])
    table = pd.read_csv(example["csv_file"], header=[0, 1, 2], index_col=0)
    for session, video in enumerate(example["videos"]):
        with open_video(video) as reader:
            decoded = np.concatenate([frames for _, frames in reader.iter_batches(64)])
        for image_path in table.index[table.index.str.startswith(f"labeled-data/session{session}/")]:
            image = np.asarray(Image.open(out_dir / image_path))
            assert image.shape == decoded.shape[1:]
            frame = int(Path(image_path).stem.removeprefix("img"))
            np.testing.assert_array_equal(image, decoded[frame])


def test_markers_are_drawn_at_the_keypoints() -> None:
    view_size = (128, 128)
    rng = np.random.default_rng(7)
    world = simulate_trajectory(rng, 150, view_size)
    keypoints = project_keypoints(world, view_size)
    background = make_background(rng, view_size)
    colours = np.concatenate([PART_COLOURS, PART_COLOURS])  # same marker in both views
    on_marker = []
    for parts, points in zip(world, keypoints):
        frame = render_frame(parts, background, view_size, rng)
        assert frame.shape == (128, 256, 3) and frame.dtype == np.uint8
        columns, rows = np.rint(points).astype(int).T
        on_marker.append(np.abs(frame[rows, columns].astype(float) - colours).max(axis=-1) <= 25)
    # Nearer markers may hide farther ones for a moment, but almost never.
    assert np.mean(on_marker, axis=0).min() >= 0.97


def test_example_yaml_lists_the_config_fields(example: dict) -> None:
    fields = yaml.safe_load(Path(example["example_yaml"]).read_text())
    for key in ("keypoint_names", "mirrored_column_matches", "columns_for_singleview_pca", "fps", "seed"):
        assert fields[key] == example[key]
    assert (fields["image_height"], fields["image_width"]) == (128, 256)
    top, bottom = fields["mirrored_column_matches"]
    assert [KEYPOINTS[i].removesuffix("_top") for i in top] == [KEYPOINTS[i].removesuffix("_bot") for i in bottom]


def test_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = [sys.executable, str(REPO / "scripts/make_example.py"), str(tmp_path / "data")]
    done = subprocess.run(
        [*script, "--sessions", "1", "--frames", "12", "--labeled", "3"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data/videos/session0.mp4").is_file()
    labeled = pd.read_csv(tmp_path / "data/CollectedData.csv", header=[0, 1, 2], index_col=0).index
    assert len(labeled) == 3
    # each labeled frame n comes with its context frames n-2..n+2 (clipped to the video)
    numbers = {int(p.stem[3:]) for p in (tmp_path / "data/labeled-data/session0").glob("*.png")}
    for path in labeled:
        n = int(Path(path).stem[3:])
        assert {max(0, min(11, n + k)) for k in range(-2, 3)} <= numbers

    too_many = subprocess.run([*script, "--frames", "12", "--labeled", "100"], env=env, capture_output=True, text=True)
    assert too_many.returncode == 2 and "n_labeled" in too_many.stderr
