"""Other tools' projects in (DeepLabCut, SLEAP, Lightning Pose), other tools' formats out (NWB)."""

import hashlib
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import ROOT
from lightning_pose_lib import formats
from lightning_pose_lib.data.labels import read_labels, read_pose_table
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.video import open_video
from lightning_pose_lib.video.pyav_backend import frame_times
from other_formats import DLC_SCORER, keypoints_equal, make_dlc_project, make_lightning_pose_config, make_sleap_file


def tree_digest(root):
    """Every file under root (links followed) and its bytes: the user's project must not change."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def check_imported(csv_file, original):
    labels = read_labels(csv_file)
    assert labels.keypoint_names == original.keypoint_names
    assert sorted(labels.image_paths) == sorted(original.image_paths)
    order = [labels.image_paths.index(p) for p in original.image_paths]
    assert keypoints_equal(labels.keypoints[order], original.keypoints)
    for path in labels.image_paths:
        assert (csv_file.parent / path).is_file(), path
    return labels


@pytest.fixture()
def dlc_project(tmp_path, example_dir):
    return make_dlc_project(example_dir, tmp_path / "walk-Alice-2026-12-04")


@pytest.mark.parametrize("name", ["folder", "config.yaml"])
def test_deeplabcut_project_sessions_are_merged_without_touching_it(tmp_path, example_dir, dlc_project, name):
    before = tree_digest(dlc_project)
    source = dlc_project if name == "folder" else dlc_project / "config.yaml"
    assert formats.detect(source) == "deeplabcut"
    csv_file = formats.import_dataset(source, tmp_path / "data")
    labels = check_imported(csv_file, read_labels(example_dir / "CollectedData.csv"))
    assert labels.scorer == DLC_SCORER and {p.split("/")[1] for p in labels.image_paths} == {"session0", "session1"}
    # The images and videos are links into the project, not copies.
    assert (tmp_path / "data" / "labeled-data").is_symlink()
    assert sorted(p.name for p in (tmp_path / "data" / "videos").iterdir()) == ["session0.mp4", "session1.mp4"]
    assert all(p.is_symlink() for p in (tmp_path / "data" / "videos").iterdir())
    # The config's video_sets name where the videos were; the project's videos/ has them now.
    assert formats.videos(source) == [dlc_project / "videos" / "session0.mp4", dlc_project / "videos" / "session1.mp4"]
    assert tree_digest(dlc_project) == before


def test_deeplabcut_h5_labels_and_the_one_column_layout(tmp_path, example_dir, dlc_project):
    original = read_labels(example_dir / "CollectedData.csv")
    # Session 0 has only its .h5; session 1's CSV has one path column (DeepLabCut before 2.2).
    (dlc_project / "labeled-data/session0" / f"CollectedData_{DLC_SCORER}.csv").unlink()
    csv1 = dlc_project / "labeled-data/session1" / f"CollectedData_{DLC_SCORER}.csv"
    table = pd.read_csv(csv1, header=[0, 1, 2], index_col=[0, 1, 2])
    table.index = ["/".join(i) for i in table.index]
    table.to_csv(csv1)
    assert csv1.read_text().splitlines()[3].startswith("labeled-data/session1/img")
    check_imported(formats.import_dataset(dlc_project, tmp_path / "data"), original)


def test_deeplabcut_body_parts_follow_the_project_config(tmp_path, example_dir, dlc_project, caplog):
    config = yaml.safe_load((dlc_project / "config.yaml").read_text())
    original = read_labels(example_dir / "CollectedData.csv")
    config["bodyparts"] = [original.keypoint_names[1], original.keypoint_names[0], "paw"]
    (dlc_project / "config.yaml").write_text(yaml.safe_dump(config))
    with caplog.at_level(logging.WARNING):
        labels = read_labels(formats.import_dataset(dlc_project, tmp_path / "data"))
    assert labels.keypoint_names == config["bodyparts"]
    order = [labels.image_paths.index(p) for p in original.image_paths]
    assert keypoints_equal(labels.keypoints[order][:, :2], original.keypoints[:, [1, 0]])
    assert np.isnan(labels.keypoints[:, 2]).all()  # labeled nowhere
    assert "left out" in caplog.text and original.keypoint_names[5] in caplog.text


def test_multi_animal_deeplabcut_project_is_one_clear_line(tmp_path, dlc_project):
    csv_file = dlc_project / "labeled-data/session0" / f"CollectedData_{DLC_SCORER}.csv"
    lines = csv_file.read_text().splitlines()
    individuals = "individuals,," + "".join(",mouse1" for _ in lines[0].split(",")[3:])
    csv_file.write_text("\n".join([lines[0], individuals, *lines[1:]]) + "\n")
    (csv_file.with_suffix(".h5")).unlink()
    out = subprocess.run([sys.executable, str(ROOT / "scripts/import_dataset.py"), str(dlc_project), str(tmp_path / "data")], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {csv_file}: has an 'individuals' header row: multi-animal DeepLabCut projects are not supported (only single-animal projects)"]
    assert not (tmp_path / "data" / "CollectedData.csv").exists()
    config = yaml.safe_load((dlc_project / "config.yaml").read_text())
    (dlc_project / "config.yaml").write_text(yaml.safe_dump({**config, "multianimalproject": True}))
    formats.dlc.project.cache_clear()
    with pytest.raises(InputError, match="multianimalproject is true: multi-animal"):
        formats.import_dataset(dlc_project, tmp_path / "data")


@pytest.mark.parametrize("embed", [False, True], ids=["slp", "pkg.slp"])
def test_sleap_labels_with_external_or_embedded_frames(tmp_path, example_dir, embed):
    source = make_sleap_file(example_dir, tmp_path / ("labels.pkg.slp" if embed else "labels.slp"), embed)
    before = tree_digest(example_dir)
    csv_file = formats.import_dataset(source, tmp_path / "data")
    labels = check_imported(csv_file, read_labels(example_dir / "CollectedData.csv"))
    # The extracted frames are the video's frames (the labeled images of the example are too).
    for path in labels.image_paths[:3] + labels.image_paths[-2:]:
        ours = np.asarray(Image.open(csv_file.parent / path))
        np.testing.assert_array_equal(ours, np.asarray(Image.open(example_dir / path)))
    # From the videos, the two frames either side come along (context model); a package has none.
    session0 = sorted(p.name for p in (csv_file.parent / "labeled-data/session0").iterdir())
    labeled0 = sorted(p.split("/")[-1] for p in labels.image_paths if "/session0/" in p)
    assert (session0 == labeled0) == embed and set(labeled0) <= set(session0)
    assert formats.videos(source) == [example_dir / "videos/session0.mp4", example_dir / "videos/session1.mp4"]
    assert tree_digest(example_dir) == before


def test_sleap_frame_with_two_animals_is_an_error(tmp_path, example_dir):
    import sleap_io as sio

    source = make_sleap_file(example_dir, tmp_path / "labels.slp", embed=False)
    labels = sio.load_slp(str(source))
    frame = labels.labeled_frames[4]
    frame.instances.append(sio.Instance.from_numpy(frame.instances[0].numpy() + 5, skeleton=labels.skeletons[0]))
    sio.save_slp(labels, str(source), verbose=False)
    with pytest.raises(InputError, match=f"frame {frame.frame_idx} of .*session0.mp4 has 2 labeled animals: multi-animal projects are not supported"):
        formats.import_dataset(source, tmp_path / "data")


def test_lightning_pose_config_keys_are_mapped_and_the_others_listed(tmp_path, example_dir, caplog):
    from test_workflow import TINY_MODEL

    source = make_lightning_pose_config(example_dir, tmp_path / "config.yaml", TINY_MODEL)
    assert formats.detect(source) == "lightning_pose"
    with caplog.at_level(logging.WARNING):
        mapped = formats.model_config(source)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    for key in ("training.imgaug_hflip", "training.uniform_heatmaps_for_nan_keypoints", "eval.save_vids_after_training", "callbacks.anneal_weight.attr_name", "hydra"):
        assert key in warnings[0].getMessage()
    assert mapped["training"]["max_epochs"] == TINY_MODEL["training"]["max_epochs"] and mapped["training"]["imgaug"] == "dlc"
    assert mapped["data"]["mirrored_column_matches"] == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert not {"data_dir", "csv_file", "video_dir", "imgaug_hflip"} & (set(mapped["data"]) | set(mapped["training"]))
    # A value this project does not accept stops with the file named.
    bad = yaml.safe_load(source.read_text())
    bad["model"]["model_type"] = "heatmap_multiview_transformer"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(InputError, match=r"bad.yaml: config key 'model.model_type'"):
        formats.model_config(tmp_path / "bad.yaml")
    # The data: the labels as they are, their images and the videos linked.
    check_imported(formats.import_dataset(source, tmp_path / "data"), read_labels(example_dir / "CollectedData.csv"))
    assert (tmp_path / "data" / "labeled-data").is_symlink()


def test_what_cannot_be_imported_is_named(tmp_path):
    (tmp_path / "other.yaml").write_text("a: 1\n")
    with pytest.raises(InputError, match="neither a DeepLabCut project config"):
        formats.detect(tmp_path / "other.yaml")
    with pytest.raises(InputError, match="config.yaml not found"):
        formats.detect(tmp_path)
    with pytest.raises(InputError, match="SLEAP labels file not found"):
        formats.detect(tmp_path / "missing.slp")


def test_nwb_has_the_predictions_and_the_video_times(tmp_path, example_dir):
    from movement.io import load_poses

    from lightning_pose_lib.formats.nwb import write_nwb

    video, truth = example_dir / "videos/session0.mp4", example_dir / "videos/session0_truth.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts/export_nwb.py"), str(truth), str(video), str(tmp_path / "cli.nwb")], check=True)
    table = read_pose_table(truth)
    check_nwb(tmp_path / "cli.nwb", table, video)
    table.iloc[5, 3:6] = np.nan  # a keypoint not found in a frame
    write_nwb(table, video, tmp_path / "session0.nwb", "my_model")
    check_nwb(tmp_path / "session0.nwb", table, video)
    position = load_poses.from_nwb_file(tmp_path / "session0.nwb").position.squeeze("individuals")
    for name in table.columns.get_level_values("bodyparts")[:6:3]:
        np.testing.assert_array_equal(position.sel(keypoints=name).to_numpy(), table[("synthetic", name)][["x", "y"]].to_numpy())


def check_nwb(path, table, video):
    from pynwb import NWBHDF5IO

    names = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    with NWBHDF5IO(str(path), "r") as io:
        pose = io.read().processing["behavior"]["PoseEstimation"]
        assert sorted(pose.pose_estimation_series) == sorted(names) and list(pose.skeleton.nodes[:]) == names  # the skeleton keeps the order
        with open_video(video, backend="pyav") as reader:
            assert list(pose.dimensions[0]) == [reader.info.width, reader.info.height]
            fps = reader.info.fps
        times = frame_times(video)
        assert len(times) == len(table) and np.allclose(np.diff(times), 1 / fps)
        for name in names:
            series = pose.pose_estimation_series[name]
            part = table.xs(name, axis=1, level="bodyparts").droplevel("scorer", axis=1)
            np.testing.assert_array_equal(series.data[:], part[["x", "y"]].to_numpy())
            np.testing.assert_array_equal(series.confidence[:], part["likelihood"].to_numpy())
            np.testing.assert_array_equal(series.timestamps[:], times)
