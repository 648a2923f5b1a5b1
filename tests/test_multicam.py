"""Several synchronized cameras: the generator's multi-camera mode, calibration and triangulation,
the per-view label files' checks, and the workflow end to end on a generated 3-camera dataset."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, logged_scalars, tiny_overrides
from lightning_pose_lib.calibration import read_calibration, reprojection_error, rodrigues_matrix, rodrigues_vector, triangulate
from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.example import CAMERA_NAMES, make_example

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow" / "Snakefile")]
VIEWS = list(CAMERA_NAMES)


@pytest.fixture(scope="module")
def cams(tmp_path_factory):
    out = tmp_path_factory.mktemp("cams")
    make_example(out, seed=0, n_sessions=2, frames_per_session=30, n_labeled=20, cameras=3)
    return out


def cams_config(data_dir, **extra):
    views = json.dumps(VIEWS)
    files = json.dumps([f"CollectedData_{v}.csv" for v in VIEWS])
    return load_config(overrides=tiny_overrides(data_dir, **{"data.view_names": views, "data.csv_file": files, **extra}))


def truth(data_dir, session, frames=None):
    """(V, N, K, 2) ground truth of every view of a session."""
    return np.stack([read_pose_table(data_dir / "videos" / f"{session}_{v}_truth.csv").to_numpy().reshape(-1, 6, 3)[..., :2] for v in VIEWS])


def test_rodrigues_round_trip_at_every_angle():
    rng = np.random.default_rng(0)
    for angle in [0.0, 1e-8, 0.5, 2.0, np.pi - 1e-9, np.pi]:
        axis = rng.normal(size=3)
        vector = axis / np.linalg.norm(axis) * angle
        matrix = rodrigues_matrix(vector)
        assert np.allclose(rodrigues_matrix(rodrigues_vector(matrix)), matrix, atol=1e-9)


def test_generated_cameras_see_the_animal_where_the_calibration_says(cams):
    cameras = read_calibration(cams / "calibration.toml", VIEWS)
    assert [c.name for c in cameras] == VIEWS and all(c.size == (128, 128) for c in cameras)
    points = truth(cams, "session0")
    assert points.shape == (3, 30, 6, 2) and np.all((points > 0) & (points < 127))
    world, error = reprojection_error(cameras, points)
    assert np.nanmax(error) < 1e-3  # the ground truth is one 3D point per keypoint, to CSV rounding
    # Two views suffice; a keypoint seen in one view only has no 3D point.
    two = points.copy()
    two[0, 0, 0] = np.nan
    assert np.allclose(triangulate(cameras, two)[0, 0], world[0, 0], atol=1e-3)
    two[1, 0, 0] = np.nan
    assert np.isnan(triangulate(cameras, two)[0, 0]).all()
    # Views drawn as the calibration says: the nose marker's colour sits at its keypoint.
    from lightning_pose_lib.video import open_video

    with open_video(cams / "videos" / "session0_cam1.mp4", backend="pyav") as reader:
        frame = reader.read_frames(np.array([5]))[0].astype(float)
    x, y = np.rint(points[1, 5, 0]).astype(int)
    assert frame[y, x, 0] > 150 and frame[y, x, 1] < 110  # red


def test_triangulated_keypoints_are_as_accurate_as_the_2d_ones(cams):
    """Keypoints with 2D errors (noise, and one view far off now and then), triangulated from the
    three calibrated views and reprojected: within 1 px of the 2D error against the ground truth."""
    cameras = read_calibration(cams / "calibration.toml", VIEWS)
    points = truth(cams, "session1")
    rng = np.random.default_rng(0)
    noisy = points + rng.normal(0, 1.5, points.shape)
    noisy[0, ::7, 2] += 6.0  # an outlier view
    error_2d = np.linalg.norm(noisy - points, axis=-1).mean()
    world, _ = reprojection_error(cameras, noisy)
    reprojected = np.stack([c.project(world) for c in cameras])
    error_3d = np.linalg.norm(reprojected - points, axis=-1).mean()
    assert abs(error_3d - error_2d) < 1.0 and error_3d < error_2d


def test_distortion_round_trip():
    from dataclasses import replace

    camera = read_calibration_from_example()[0]
    distorted = replace(camera, distortions=np.array([-0.2, 0.05, 0.001, -0.002, 0.01]))
    world = np.array([[60.0, 70, 5], [30, 90, 10]])
    pixels = distorted.project(world)
    assert np.allclose(distorted.normalize(pixels), camera.normalize(camera.project(world)), atol=1e-9)


def read_calibration_from_example():
    from lightning_pose_lib.example import make_cameras

    return make_cameras(3, (128, 128))


def test_views_load_side_by_side(cams):
    dataset = load_dataset(cams_config(cams))
    assert dataset.view_names == tuple(VIEWS) and len(dataset.views) == 3
    assert dataset.labels.keypoints.shape == (20, 18, 2)
    assert dataset.labels.keypoint_names[:2] == ["nose_cam0", "ear_l_cam0"] and dataset.labels.keypoint_names[6] == "nose_cam1"


@pytest.mark.parametrize("problem", ["rows", "misaligned", "keypoints"])
def test_views_that_do_not_match_stop_with_one_line(cams, tmp_path, problem):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(cams, data, ignore=shutil.ignore_patterns("*.mp4"))
    csv = data / "CollectedData_cam2.csv"
    lines = csv.read_text().splitlines()
    if problem == "rows":
        lines = lines[:-1]
    elif problem == "misaligned":
        lines[3], lines[4] = lines[4], lines[3]
    else:
        lines[1] = lines[1].replace("nose", "snout")
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_dataset(cams_config(data))
    assert str(csv) in str(err.value) and "\n" not in str(err.value)
    assert {"rows": "labeled frames", "misaligned": "rows must be aligned", "keypoints": "same keypoints"}[problem] in str(err.value)


def test_pca_multiview_loss_ties_the_cameras_together(cams):
    """The model's per-view clip predictions, laid side by side per frame, meet the multiview PCA
    fitted on the labels: zero loss for the true keypoints, a large one when a view shows another
    instant."""
    import torch

    from lightning_pose_lib.models.pose_model import PoseModel
    from lightning_pose_lib.pca import fit_model_pcas

    cfg = cams_config(cams, **{"model.losses_to_use": "[pca_multiview]", "data.columns_for_singleview_pca": "[0,1,2,3,4,5]"})
    dataset = load_dataset(cfg)
    pcas = fit_model_pcas(cfg, dataset.labels.keypoints)
    assert pcas["multiview"].groups.tolist() == [list(range(v * 6, v * 6 + 6)) for v in range(3)]
    model = PoseModel(cfg, 6)
    model.use_unsupervised_losses(pcas)
    points = truth(cams, "session0")[:, :8]  # (V, T, K, 2): one clip of 8 frames
    clips = torch.tensor(points, dtype=torch.float32)  # view-major, as the training step stacks them
    likelihood = torch.ones(clips.shape[:-1])
    loss = model.unsupervised["pca_multiview"]
    fused = {"keypoints": model.views_side_by_side(clips), "likelihood": model.views_side_by_side(likelihood)}
    assert fused["keypoints"].shape == (1, 8, 18, 2)
    assert torch.equal(fused["keypoints"][0, 3, 6:12], clips[1, 3])
    assert loss(fused).item() < 0.05  # the views are perspective: the 3D subspace fits them to a fraction of a pixel
    shifted = clips.clone()
    shifted[2] = torch.tensor(truth(cams, "session0")[2, 20:28], dtype=torch.float32)  # another instant
    assert loss({"keypoints": model.views_side_by_side(shifted), "likelihood": fused["likelihood"]}).item() > 1.0


def test_context_model_trains_across_cameras_and_predicts_a_session(cams, tmp_path):
    """The context model (heatmap_mhcrnn) on three cameras: one network, pca_multiview across the
    views and temporal per view, then predict.py on a whole session writes each view's table and
    both heads' predictions."""
    from lightning_pose_lib.train import train

    cfg = cams_config(cams, **{"model.model_type": "heatmap_mhcrnn", "model.do_context": "true", "data.video_dir": "videos",
                               "model.losses_to_use": "[temporal,pca_multiview]", "training.max_epochs": 1})
    train(cfg, tmp_path / "m")
    assert {"train_temporal_loss", "train_pca_multiview_loss"} <= logged_scalars(tmp_path / "m")
    videos = [str(cams / "videos" / f"session1_{v}.mp4") for v in VIEWS]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), "--model-dir", str(tmp_path / "m"), "--output-dir", str(tmp_path / "p"), *videos],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    for view in VIEWS:
        table = read_pose_table(tmp_path / "p" / f"session1_{view}.csv")
        assert table.shape == (30, 18) and not table.isna().any().any()
        for head in ("static", "context"):
            assert len(read_pose_table(tmp_path / "p" / "heads" / f"session1_{view}_{head}.csv")) == 30


def test_config_needs_one_csv_per_view(cams):
    with pytest.raises(InputError, match="one label CSV per view"):
        load_config(overrides=tiny_overrides(cams, **{"data.view_names": json.dumps(VIEWS)}))


def test_sessions_need_every_view_with_equal_frames(cams, tmp_path):
    from lightning_pose_lib.data.sessions import check_frame_counts, group_sessions
    from lightning_pose_lib.video import open_video, write_video

    videos = sorted(str(p) for p in (cams / "videos").glob("*.mp4"))
    assert list(group_sessions(videos, VIEWS)) == ["session0", "session1"]
    with pytest.raises(InputError, match="video of view cam2 of session session1 not found"):
        group_sessions(videos[:-1], VIEWS)
    with pytest.raises(InputError, match="file name must be <session>_<view>"):
        group_sessions([*videos, str(tmp_path / "other.mp4")], VIEWS)
    with open_video(videos[1], backend="pyav") as reader:
        frames = reader.read_frames(np.arange(20))
    short = tmp_path / "session0_cam1.mp4"
    write_video(short, iter(frames), 30.0)
    with pytest.raises(InputError) as err:
        check_frame_counts([videos[0], str(short), videos[2]])
    assert str(short) in str(err.value) and "20 frames" in str(err.value)


MODEL = {
    "data": {"image_resize_dims": {"height": 64, "width": 64}, "columns_for_singleview_pca": [0, 1, 2, 3, 4, 5], "calibration_file": "calibration.toml"},
    "training": {"train_batch_size": 4, "train_prob": 0.7, "val_prob": 0.15, "min_epochs": 1, "max_epochs": 1, "check_val_every_n_epoch": 1, "unfreezing_epoch": 0},
    "model": {"backbone": "resnet18", "backbone_pretrained": False},
    "dali": {"base": {"train": {"sequence_length": 4}, "predict": {"sequence_length": 32}}},
    "callbacks": {"anneal_weight": {"freeze_until_epoch": 0}},
}


def test_workflow_on_three_cameras(tmp_path):
    """Train with pca_multiview across cameras, predict each session, evaluate: outputs per view."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "model.yaml").write_text(yaml.safe_dump(MODEL))
    workflow = {
        "model_config": "config/model.yaml",
        "datasets": {"cams": {"data_dir": "resources/cams", "example": {"seed": 0, "sessions": 2, "frames": 30, "labeled": 20, "cameras": 3}}},
        "variants": {"semisupervised": {"model_config": {"model": {"model_type": "heatmap", "losses_to_use": ["temporal", "pca_singleview", "pca_multiview"]}}}},
        "predict": {"videos_per_job": 3},
        "diagnostics": {"labeled_videos": False, "videos": ["session0_cam0"]},
    }
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(workflow))
    out = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", "--show-failed-logs"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-5000:]
    model = tmp_path / "results" / "cams" / "models" / "semisupervised__seed=0"
    preds = model / "video_preds"
    # One prediction job per session (videos_per_job 3 = one session of 3 views).
    manifests = sorted((preds / ".store").glob("chunk*.json"))
    assert [sorted(v["video"].rsplit("/", 1)[1] for v in json.loads(m.read_text())["videos"]) for m in manifests] == [
        [f"session{s}_{v}.mp4" for v in VIEWS] for s in (0, 1)
    ]
    for session in ("session0", "session1"):
        for view in VIEWS:
            for suffix in ("csv", "h5"):
                table = read_pose_table(preds / f"{session}_{view}.{suffix}")
                assert table.shape == (30, 18) and list(table.columns.get_level_values("bodyparts")[::3]) == ["nose", "ear_l", "ear_r", "body", "tail_base", "tail_tip"]
            for metric in ("temporal_norm", "pca_singleview_error", "pca_multiview_error", "reprojection_error"):
                table = pd.read_csv(preds / f"{session}_{view}_{metric}.csv", index_col=0)
                assert table.shape == (30, 6) and table.iloc[1:].notna().all().all(), metric
        points = pd.read_csv(preds / f"{session}_3d.csv", header=[0, 1], index_col=0)
        assert points.shape == (30, 18)
    for metric in ("pixel_error", "pca_singleview_error", "pca_multiview_error"):
        table = pd.read_csv(model / f"predictions_{metric}.csv", index_col=0)
        assert table.shape == (20, 19) and table.drop(columns="set").notna().mean().mean() > 0.9, metric
    summary = json.loads((model / "metrics" / "summary.json").read_text())
    for key in ("video_pca_multiview_error", "video_reprojection_error", "validation_pixel_error"):
        assert summary[key] is not None and summary[key] >= 0, key
    assert set(summary["per_video"]) == {f"session{s}_{v}" for s in (0, 1) for v in VIEWS}


def test_predicting_part_of_a_session_stops_with_one_line(cams, tmp_path):
    """A multi-camera model predicts whole sessions: a view's video missing is one line, exit 2,
    before the model is loaded."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.yaml").write_text(yaml.safe_dump(cams_config(cams)))
    videos = [str(cams / "videos" / f"session0_{v}.mp4") for v in VIEWS[:2]]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out"), *videos],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {cams / 'videos' / 'session0_cam2.mp4'}: video of view cam2 of session session0 not found (every session needs a video per view)"
    assert not (tmp_path / "out").exists()
