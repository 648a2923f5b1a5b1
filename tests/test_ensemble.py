"""Ensembles and the Ensemble Kalman Smoother (lightning_pose_lib/ensemble.py, scripts/ensemble.py)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from lightning_pose_lib import ensemble
from lightning_pose_lib.data.labels import pose_table, read_pose_table, write_pose_table
from lightning_pose_lib.ensemble import ensemble_statistics, fuse, fusion_table, labeled_frames_from_videos, video_frame_of
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.metrics import read_predictions, truth_error

VIEWS = [[0, 1, 2], [3, 4, 5]]


def walking_members(frames=300, members=3, seed=0, outlier_rate=0.05):
    """Members' predictions of 6 keypoints (3 body parts seen in 2 mirrored views, each view a
    linear image of one 3D point) that move smoothly: the truth plus noise, now and then a
    large error in one member, as trained networks make."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    world = np.stack([np.stack([40 + 15 * np.sin(t / 30 + j), 60 + 10 * np.cos(t / 45 + 2 * j), 5 + 3 * np.sin(t / 20 + j)], -1) for j in range(3)], 1)
    top = world[..., :2]
    side = np.stack([200 - world[..., 0], 100 - 0.8 * world[..., 1] - 0.5 * world[..., 2]], -1)
    truth = np.concatenate([top, side], axis=1)  # (N, 6, 2)
    noise = rng.normal(0, 1.5, (members, frames, 6, 2))
    outliers = rng.random((members, frames, 6)) < outlier_rate
    noise[outliers] += rng.normal(0, 12, (int(outliers.sum()), 2))
    likelihood = np.where(outliers, rng.uniform(0.3, 0.7, outliers.shape), rng.uniform(0.8, 1.0, outliers.shape))
    return truth, truth[None] + noise, likelihood


def error(points, truth):
    return float(np.linalg.norm(points - truth, axis=-1).mean())


def test_ensemble_statistics_follow_the_package():
    points = np.array([[[[0.0, 0.0]]], [[[2.0, 4.0]]], [[[4.0, 2.0]]]])  # 3 members, 1 frame, 1 keypoint
    likelihood = np.array([[[1.0]], [[0.5]], [[0.0]]])
    centre, spread, confidence = ensemble_statistics(points, likelihood, "median", "confidence_weighted")
    assert centre.tolist() == [[[2.0, 2.0]]] and confidence.tolist() == [[0.5]]
    assert np.allclose(spread, np.var([0, 2, 4]) / 0.5)  # population variance over members, over the mean likelihood
    centre, spread, _ = ensemble_statistics(points, likelihood, "mean", "plain")
    assert np.allclose(centre, [[[2.0, 2.0]]]) and np.allclose(spread, np.var([0, 2, 4]))
    _, alone, _ = ensemble_statistics(points[:1], np.full((1, 1, 1), 0.25))
    assert np.allclose(alone, 4.0)  # one member: 1 / likelihood
    _, missing, _ = ensemble_statistics(np.full((2, 1, 1, 2), np.nan), np.zeros((2, 1, 1)))
    assert np.all(missing == ensemble.MISSING_VARIANCE)


@pytest.mark.parametrize("views", [None, VIEWS], ids=["single_view", "mirrored"])
def test_eks_beats_the_members_and_their_average(views):
    truth, points, likelihood = walking_members()
    fused = fuse(points, likelihood, views=views)
    members = sorted(error(p, truth) for p in points)
    assert error(fused.keypoints, truth) < 0.7 * error(fused.average, truth) < 0.7 * members[1]
    assert fused.smooth_param.shape == (6,) and np.all((fused.smooth_param > np.exp(-8)) & (fused.smooth_param < np.exp(8)))
    assert np.all(fused.posterior_variance > 0) and np.all(np.isfinite(fused.keypoints))
    # The posterior variance is smallest where the members agree.
    agree = fused.ensemble_variance < np.quantile(fused.ensemble_variance, 0.2)
    disagree = fused.ensemble_variance > np.quantile(fused.ensemble_variance, 0.8)
    assert fused.posterior_variance[agree].mean() < fused.posterior_variance[disagree].mean()


def test_smoothing_parameter_sets_how_closely_the_average_is_followed():
    truth, points, likelihood = walking_members(frames=120)
    loose = fuse(points, likelihood, smooth_param=1e6)
    tight = fuse(points, likelihood, smooth_param=1e-3)
    assert np.abs(loose.keypoints - loose.average)[1:].max() < 0.05  # frame 0 also has the prior
    assert np.diff(tight.keypoints, axis=0).std() < 0.2 * np.diff(loose.keypoints, axis=0).std()
    assert np.all(loose.smooth_param == 1e6)
    with pytest.raises(ValueError, match="must be positive"):
        fuse(points, likelihood, smooth_param=0)


def test_frames_no_member_predicted_are_bridged():
    truth, points, likelihood = walking_members(frames=120)
    points[:, 50:55] = np.nan
    for views in (None, VIEWS):
        fused = fuse(points, likelihood, views=views)
        assert np.all(np.isfinite(fused.keypoints)) and error(fused.keypoints[50:55], truth[50:55]) < 5
        assert fused.posterior_variance[52].mean() > 3 * fused.posterior_variance[40].mean()  # less sure there


def test_without_smoother_the_ensemble_is_its_average():
    truth, points, likelihood = walking_members(frames=50)
    fused = fuse(points, likelihood, smoother="none", average="mean")
    assert np.allclose(fused.keypoints, points.mean(axis=0)) and np.array_equal(fused.posterior_variance, fused.ensemble_variance)


def test_fusion_table_reads_as_predictions(tmp_path):
    truth, points, likelihood = walking_members(frames=30)
    names = [f"k{i}" for i in range(6)]
    fused = fuse(points, likelihood, views=VIEWS)
    write_pose_table(fusion_table(fused, names, "median"), tmp_path / "v.csv", tmp_path / "v.h5")
    for path in (tmp_path / "v.csv", tmp_path / "v.h5"):
        table = read_predictions(path, 30)
        assert table.columns.get_level_values("coords")[:9].tolist() == ensemble.fusion_columns("median")
        assert np.allclose(table.xs("x_posterior_var", axis=1, level="coords").to_numpy(), fused.posterior_variance[..., 0], atol=1e-4)
    truth_table = pose_table(truth, names, "truth", np.ones(truth.shape[:2]))
    errors = truth_error(read_predictions(tmp_path / "v.csv"), truth_table)
    assert errors.shape == (30, 6) and abs(errors.to_numpy().mean() - error(fused.keypoints, truth)) < 1e-3


def test_labeled_frames_come_from_the_videos_they_were_cut_from():
    assert video_frame_of("labeled-data/session0/img00000123.png") == ("session0", 123)
    assert video_frame_of("img7.png") is None
    video = pose_table(np.arange(10, dtype=float).reshape(5, 1, 2), ["nose"], "s", np.ones((5, 1)))
    table = labeled_frames_from_videos(["labeled-data/a/img003.png", "labeled-data/b/img001.png", "labeled-data/a/img9.png"], {"a": video})
    assert table.iloc[0].tolist() == [6.0, 7.0, 1.0] and table.iloc[1:].isna().all(axis=None)


# --- The ensemble-kalman-smoother package, where it is installed ------------------------------------

def eks_python() -> str:
    """The Python that has the package: $EKS_PYTHON, else .venv-eks/ (scripts/run.sh test makes it)."""
    python = os.environ.get("EKS_PYTHON") or str(ROOT / ".venv-eks" / "bin" / "python")
    if not Path(python).exists():
        pytest.skip("ensemble-kalman-smoother not installed (scripts/run.sh test installs it into .venv-eks)")
    return python


@pytest.fixture(scope="module")
def package_results(tmp_path_factory) -> dict:
    """The package's fusion of the members of :func:`walking_members` (200 frames, seed 3), single
    view and mirrored, in one process: {"single_view" | "mirrored": its outputs}."""
    python, folder = eks_python(), tmp_path_factory.mktemp("eks")
    truth, points, likelihood = walking_members(frames=200, seed=3)
    args = []
    for name, views in (("single_view", np.zeros((0, 0))), ("mirrored", VIEWS)):
        np.savez(folder / f"{name}_in.npz", points=points, likelihood=likelihood, views=np.asarray(views, dtype=int), smooth_param=np.nan)
        args += [str(folder / f"{name}_in.npz"), str(folder / f"{name}_out.npz")]
    subprocess.run([python, str(ROOT / "tests" / "eks_reference.py"), *args], check=True, capture_output=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return {name: dict(np.load(folder / f"{name}_out.npz")) for name in ("single_view", "mirrored")}


@pytest.mark.parametrize("views", [None, VIEWS], ids=["single_view", "mirrored"])
def test_matches_the_ensemble_kalman_smoother_package(package_results, views):
    truth, points, likelihood = walking_members(frames=200, seed=3)
    theirs = package_results["single_view" if views is None else "mirrored"]
    # Given the package's smoothing parameters, the same smoothed keypoints and variances (the
    # package computes in float32).
    s = theirs["smooth_param"] if views is None else np.concatenate([theirs["smooth_param"]] * 2)
    ours = fuse(points, likelihood, views=views, smooth_param=s)
    for field, tolerance in (("average", 1e-4), ("ensemble_variance", 1e-3), ("keypoints", 5e-3), ("posterior_variance", 5e-3)):
        scale = max(1.0, float(np.abs(theirs[field]).max()))
        assert np.abs(getattr(ours, field) - theirs[field]).max() < tolerance * scale, field
    # Choosing the parameter itself: the same criterion, minimised at least as well.
    chosen = fuse(points, likelihood, views=views)
    if views is None:
        model, pairs, ours_s, theirs_s = ensemble.singleview_model(chosen.average, chosen.ensemble_variance), 2, chosen.smooth_param, s
    else:
        (model, _), pairs = ensemble.mirrored_model(chosen.average, chosen.ensemble_variance, np.asarray(views)), 1
        ours_s, theirs_s = chosen.smooth_param[views[0]], theirs["smooth_param"]
    criterion = model.choice_nll(np.log(np.stack([ours_s, theirs_s], axis=1)), pairs)
    assert np.all(criterion[:, 0] <= criterion[:, 1] + 1e-6 * np.abs(criterion[:, 1])), criterion
    assert error(chosen.keypoints, truth) <= 1.05 * error(theirs["keypoints"], truth)


def test_cli_fuses_model_directories(tmp_path):
    truth, points, likelihood = walking_members(frames=40)
    names = [f"k{i}" for i in range(6)]
    labels = pose_table(truth[[3, 7]], names, "me", index=["labeled-data/session0/img003.png", "labeled-data/session0/img007.png"])
    labels.to_csv(tmp_path / "CollectedData.csv")
    members = []
    for m in range(3):
        folder = tmp_path / f"model{m}"
        write_pose_table(pose_table(points[m], names, "m", likelihood[m]), folder / "video_preds" / "session0.csv")
        labeled = pose_table(points[m][[3, 7]], names, "m", likelihood[m][[3, 7]], index=labels.index)
        labeled[("set", "", "")] = ["train", "validation"]
        labeled.to_csv(folder / "predictions.csv")
        (folder / "config.yaml").write_text(f"data: {{data_dir: {tmp_path}, csv_file: CollectedData.csv, mirrored_column_matches: {VIEWS}}}\n")
        members.append(str(folder))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "ensemble.py"), "--out-dir", str(tmp_path / "ens"), *members],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    fused = read_pose_table(tmp_path / "ens" / "video_preds" / "session0.h5")
    assert np.allclose(fused.xs("x", axis=1, level="coords").to_numpy(), fuse(points, likelihood, views=VIEWS).keypoints[..., 0], atol=1e-4)
    labeled = read_pose_table(tmp_path / "ens" / "predictions.csv")
    assert labeled[("set", "", "")].tolist() == ["train", "validation"]
    assert np.allclose(labeled.drop(columns=[("set", "", "")]).to_numpy(dtype=float), fused.iloc[[3, 7]].to_numpy(), atol=1e-4)
    assert (tmp_path / "ens" / "config.yaml").read_text() == (tmp_path / "model0" / "config.yaml").read_text()
    assert "smoothing parameter per keypoint" in out.stderr


def test_members_that_do_not_fit_are_named():
    truth, points, likelihood = walking_members(frames=20)
    first = pose_table(points[0], [f"k{i}" for i in range(6)], "m", likelihood[0])
    other = pose_table(points[1][:10], [f"k{i}" for i in range(6)], "m", likelihood[1][:10])
    with pytest.raises(InputError, match=r"b\.csv: 10 frames"):
        ensemble.member_arrays([first, other], ["a.csv", "b.csv"])


def test_ensemble_config_mistakes_are_one_clear_line(tmp_path):
    from test_workflow import EXAMPLE_CONFIG, snakemake, workdir_with

    dataset = {**EXAMPLE_CONFIG["datasets"]["example"], "ensembles": {"bad": {"models": ["supervised__seed=0", "nope"]}}}
    out = snakemake(workdir_with(tmp_path, {**EXAMPLE_CONFIG, "datasets": {"example": dataset}}), "-n")
    assert out.returncode != 0 and "datasets.example.ensembles.bad: unknown models ['nope']" in out.stdout + out.stderr, out.stderr[-2000:]
