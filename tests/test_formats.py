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

from conftest import CSV_ROUNDING, ROOT
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
    # A value this project does not accept is left out, and said in the same warning.
    other = yaml.safe_load(source.read_text())
    other["model"]["model_type"] = "heatmap_multiview_transformer"
    other["training"]["imgaug"] = "dlc-top-down"
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        mapped = formats.model_config(tmp_path / "other.yaml")
    assert "model_type" not in mapped["model"] and "imgaug" not in mapped["training"] and mapped["model"]["backbone"] == "resnet18"
    assert "model.model_type: 'heatmap_multiview_transformer' (not a value this project accepts)" in caplog.text and "training.imgaug: 'dlc-top-down'" in caplog.text
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


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory, example_dir):
    """The workflow on a DeepLabCut project, a SLEAP package and a Lightning Pose config made from
    the example, with the NWB export."""
    from test_workflow import TINY_MODEL, snakemake, workdir_with

    sources = tmp_path_factory.mktemp("sources")
    tiny = {**TINY_MODEL, "training": {**TINY_MODEL["training"], "max_epochs": 1}}
    config = {
        "model_config": "config/model.yaml",
        "datasets": {
            "dlc": {"import": str(make_dlc_project(example_dir, sources / "walk-Alice-2026-12-04") / "config.yaml")},
            "sleap": {"import": str(make_sleap_file(example_dir, sources / "labels.pkg.slp", embed=True))},
            "lp": {"import": str(make_lightning_pose_config(example_dir, sources / "config.yaml", tiny))},
        },
        "variants": {"supervised": {"model_config": {"model": {"model_type": "heatmap"}}}},
        "export": {"nwb": True},
        "diagnostics": {"labeled_videos": False},
    }
    workdir = workdir_with(tmp_path_factory.mktemp("wf"), config)
    (workdir / "config" / "model.yaml").write_text(yaml.safe_dump(tiny))
    before = {name: tree_digest(p) for name, p in (("sources", sources), ("example", example_dir))}
    out = snakemake(workdir)
    assert out.returncode == 0, out.stderr[-5000:]
    return workdir, out, sources, before, snakemake


def test_imported_projects_train_predict_and_evaluate(imported_run, example_dir):
    from movement.io import load_poses

    workdir, out, sources, before, _ = imported_run
    # The Lightning Pose config's keys without effect, in one warning.
    assert out.stderr.count("keys with no effect here") == 1 and "training.imgaug_hflip" in out.stderr
    for dataset in ("dlc", "sleap", "lp"):
        results = workdir / "results" / dataset
        assert (results / "summary.csv").is_file()
        labels = check_imported(results / "data" / "CollectedData.csv", read_labels(example_dir / "CollectedData.csv"))
        assert len(labels) == 40
        model = results / "models" / "supervised__seed=0"
        assert (model / "metrics" / "summary.json").is_file()
        for video in ("session0", "session1"):
            csv_file, h5_file = model / "video_preds" / f"{video}.csv", model / "video_preds" / f"{video}.h5"
            from_csv = pd.read_csv(csv_file, header=[0, 1, 2], index_col=0)
            assert len(from_csv) == 60
            pd.testing.assert_frame_equal(pd.read_hdf(h5_file), from_csv, check_exact=False, rtol=0, atol=CSV_ROUNDING)
            # movement's Lightning Pose and DeepLabCut loaders read them as they are.
            for loaded in (load_poses.from_lp_file(csv_file, fps=30), load_poses.from_dlc_file(h5_file, fps=30), load_poses.from_dlc_file(csv_file, fps=30)):
                names = list(loaded.keypoints.values)
                position = loaded.position.squeeze("individuals").to_numpy()  # (time, space, keypoints)
                expected = np.stack([from_csv.xs((n, c), axis=1, level=("bodyparts", "coords")).to_numpy()[:, 0] for n in names for c in "xy"], axis=1)
                np.testing.assert_allclose(position.transpose(0, 2, 1).reshape(60, -1), expected, atol=CSV_ROUNDING)
            check_nwb(model / "video_preds" / f"{video}.nwb", read_pose_table(h5_file), example_dir / "videos" / f"{video}.mp4")
    assert {name: tree_digest(p) for name, p in (("sources", sources), ("example", example_dir))} == before


def test_import_is_cached_and_redone_when_the_project_changes(imported_run):
    workdir, _, sources, _, snakemake = imported_run
    out = snakemake(workdir, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr
    # A label changed in the DeepLabCut project: that import, and that dataset's training, again.
    label_file = sources / "walk-Alice-2026-12-04/labeled-data/session1" / f"CollectedData_{DLC_SCORER}.csv"
    lines = label_file.read_text().splitlines()
    cells = lines[4].split(",")
    cells[3] = str(float(cells[3]) + 1) if cells[3] else "10.0"
    label_file.write_text("\n".join([*lines[:4], ",".join(cells), *lines[5:]]) + "\n")
    out = snakemake(workdir, "-n", "--quiet", "rules")
    jobs = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) == 2 and line.split()[-1].isdigit())
    assert jobs["import_dlc"] == "1" and jobs["train"] == "1" and "import_sleap" not in jobs and "import_lp" not in jobs, out.stdout
