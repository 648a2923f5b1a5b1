"""Each metric against a hand computation, and the metric files of a model folder."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from lightning_pose_lib.config import dump, load_config
from lightning_pose_lib.data.labels import Labels, pose_table, read_labels, read_pose_table
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.metrics import (
    is_metric_file,
    metric_path,
    metrics_for,
    multiview_pca_error,
    pca_error,
    pixel_error,
    stats,
    stats_by_set,
    temporal_norm,
)
from lightning_pose_lib.pca import PosePCA, fit_model_pcas
from lightning_pose_lib.data.labels import write_pose_table

NAMES = ["nose", "tail"]


def predictions(points, likelihood, index=None, sets=None):
    table = pose_table(np.asarray(points, dtype=float), NAMES[: np.shape(points)[1]], "model_tracker", np.asarray(likelihood, dtype=float), index)
    if sets is not None:
        table[("set", "", "")] = sets
    return table


def test_pixel_error_by_hand_with_missing_labels_and_low_likelihood():
    labels = Labels(["a.png", "b.png", "c.png"], np.array([[[0, 0], [10, 10]], [[5, 5], [np.nan, np.nan]], [[1, 1], [2, 2]]], float), NAMES, "me")
    points = [[[3, 4], [10, 10]], [[5, 5], [7, 7]], [[1, 2], [8, 10]]]
    # frame b's tail has likelihood 0.01: it still counts (the metric describes the saved predictions)
    table = predictions(points, [[1, 1], [0.3, 0.01], [1, 1]], ["a.png", "b.png", "c.png"], ["train", "test", "test"])
    error = pixel_error(table, labels)
    np.testing.assert_allclose(error[NAMES].to_numpy(), [[5, 0], [0, np.nan], [1, 10]])
    assert list(error["set"]) == ["train", "test", "test"]
    by_set = stats_by_set(error)
    assert by_set["train"] == {"mean": 2.5, "median": 2.5, "std": 2.5, "n": 2}
    assert by_set["test"]["mean"] == pytest.approx(11 / 3) and by_set["test"]["n"] == 3  # the unlabeled tail is left out
    with pytest.raises(ValueError, match="are not the labels. 3 frames"):
        pixel_error(table.iloc[:2], labels)


def test_temporal_norm_by_hand():
    points = [[[0, 0]], [[3, 4]], [[3, 4]], [[np.nan, np.nan]], [[6, 8]], [[0, 0]]]
    norm = temporal_norm(predictions(points, [[1], [0.0], [1], [1], [1], [0.2]]))
    np.testing.assert_allclose(norm["nose"].to_numpy(), [np.nan, 5, 0, np.nan, np.nan, 10])
    assert stats(norm.to_numpy()) == {"mean": 5.0, "median": 5.0, "std": pytest.approx(np.std([5, 0, 10])), "n": 3}


def test_singleview_pca_error_by_hand():
    # A PCA of keypoints 0 and 1 that keeps one direction: x of keypoint 0. The error of keypoint 0
    # is then |y0 - mean|, that of keypoint 1 its whole distance to the mean; keypoint 2 is outside.
    pca = PosePCA("singleview", np.array([[0, 1]]), np.array([1.0, 2, 3, 4]), np.array([[1.0, 0, 0, 0]]), 0.0, np.array([1.0]))
    names = ["a", "b", "c"]
    table = pose_table(np.array([[[7, 5], [6, 8], [0, 0]]], float), names, "m", np.array([[0.1, 1, 1]]), index=["img.png"])
    table[("set", "", "")] = ["test"]
    error = pca_error(table, pca)
    np.testing.assert_allclose(error[names].to_numpy(), [[3, 5, np.nan]])  # |5-2| = 3; |(6-3, 8-4)| = 5
    assert list(error["set"]) == ["test"]


def two_view_pca():
    """One body part seen in two views whose x must agree: the only component is (1, 0, 1, 0)/sqrt(2)."""
    return PosePCA("multiview", np.array([[0], [1]]), np.zeros(4), np.array([[1.0, 0, 1, 0]]) / np.sqrt(2), 0.0, np.array([1.0]))


def test_multiview_pca_error_by_hand_in_both_layouts():
    pca = two_view_pca()
    # Row (x0, y0, x1, y1) = (4, 0, 0, 3): projection ((4+0)/2, 0, 2, 0), residual (2, 0, -2, 3).
    mirrored = pose_table(np.array([[[4, 0], [0, 3]], [[5, 0], [5, 0]]], float), ["top_nose", "side_nose"], "m", np.array([[1, 0.05], [1, 1]]))
    error = pca_error(mirrored, pca).to_numpy()
    np.testing.assert_allclose(error, [[2, np.sqrt(13)], [0, 0]], atol=1e-12)
    # One table per view (several cameras): the same numbers, one table back per view.
    top = pose_table(np.array([[[4, 0]], [[5, 0]]], float), ["nose"], "m", np.ones((2, 1)))
    side = pose_table(np.array([[[0, 3]], [[5, 0]]], float), ["nose"], "m", np.ones((2, 1)))
    per_view = multiview_pca_error([top, side], pca)
    np.testing.assert_allclose(per_view[0]["nose"].to_numpy(), error[:, 0], atol=1e-12)
    np.testing.assert_allclose(per_view[1]["nose"].to_numpy(), error[:, 1], atol=1e-12)
    with pytest.raises(ValueError, match="same frames"):
        multiview_pca_error([top, side.iloc[:1]], pca)
    with pytest.raises(ValueError, match="keypoint 1"):
        pca_error(top, pca)


def test_metric_file_names_follow_upstream():
    assert metric_path("m/video_preds/s0.csv", "temporal_norm").as_posix() == "m/video_preds/s0_temporal_norm.csv"
    assert metric_path("m/predictions.csv", "pixel_error").name == "predictions_pixel_error.csv"
    assert is_metric_file("s0_pca_multiview_error.csv") and not is_metric_file("s0.csv")
    cfg = load_config()
    assert metrics_for(cfg, labeled=True) == ["pixel_error"] and metrics_for(cfg, labeled=False) == ["temporal_norm"]
    cfg["data"]["columns_for_singleview_pca"] = [0, 1]
    cfg["data"]["mirrored_column_matches"] = [[0], [1]]
    assert metrics_for(cfg, labeled=False) == ["temporal_norm", "pca_singleview_error", "pca_multiview_error"]


@pytest.fixture()
def model_dir(example_dir, tmp_path):
    """A model folder as training leaves it, with hand-made predictions: every labeled keypoint off
    by (3, 4) px, and the videos predicted exactly (their ground truth)."""
    fields = {"mirrored_column_matches": [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], "columns_for_singleview_pca": [0, 1, 2, 3, 4, 5]}
    cfg = load_config({"data": {"data_dir": str(example_dir), **fields}, "training": {"train_prob": 0.7, "val_prob": 0.15}})
    (tmp_path / "config.yaml").write_text(dump(cfg))
    dataset = load_dataset(cfg)
    labels = dataset.labels
    table = predictions_for(labels, labels.keypoints + [3.0, 4.0])
    table[("set", "", "")] = dataset.sets
    write_pose_table(table, tmp_path / "predictions.csv")
    train = labels.keypoints[dataset.sets == "train"]
    # Fully labeled frames only: the NaN-aware fit bends the subspace a little (about 1 px here),
    # and this test wants exactly consistent views to score about 0.
    fit_model_pcas(cfg, train[~np.isnan(train).any(axis=(1, 2))], tmp_path)
    for session in (0, 1):
        truth = read_pose_table(example_dir / "videos" / f"session{session}_truth.csv")
        write_pose_table(truth, tmp_path / "video_preds" / f"session{session}.csv")
    return tmp_path


def predictions_for(labels, points):
    # Where a label is missing the prediction still exists: put it anywhere finite.
    points = np.where(np.isnan(points), 0.0, points)
    return pose_table(points, labels.keypoint_names, "model_tracker", np.ones(points.shape[:2]), labels.image_paths)


def test_evaluate_writes_every_metric_next_to_its_predictions(model_dir, example_dir):
    out = subprocess.run([sys.executable, ROOT / "scripts/evaluate.py", "--model-dir", model_dir], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for name in ("predictions_pixel_error", "predictions_pca_singleview_error", "predictions_pca_multiview_error",
                 "video_preds/session0_temporal_norm", "video_preds/session1_pca_singleview_error", "video_preds/session1_pca_multiview_error"):
        assert (model_dir / f"{name}.csv").is_file(), name
    error = pd.read_csv(model_dir / "predictions_pixel_error.csv", index_col=0)
    labeled = ~np.isnan(read_labels(example_dir / "CollectedData.csv").keypoints[..., 0])
    np.testing.assert_allclose(error.drop(columns="set").to_numpy()[labeled], 5.0, atol=1e-3)
    assert error.drop(columns="set").to_numpy()[~labeled].size == 0 or np.isnan(error.drop(columns="set").to_numpy()[~labeled]).all()

    summary = json.loads((model_dir / "metrics/summary.json").read_text())
    assert summary["test_pixel_error"] == pytest.approx(5.0, abs=1e-3) and summary["test_pixel_error_std"] == pytest.approx(0, abs=1e-3)
    assert summary["baseline_test_pixel_error"] > 5
    assert summary["train_frames"] == int((pd.read_csv(model_dir / "predictions_pixel_error.csv")["set"] == "train").sum())
    # Temporal norm by hand from the ground truth of both videos.
    jumps = []
    for session in (0, 1):
        truth = read_pose_table(example_dir / "videos" / f"session{session}_truth.csv").to_numpy().reshape(-1, 12, 3)[..., :2]
        jumps.append(np.linalg.norm(np.diff(truth, axis=0), axis=-1).ravel())
    assert summary["video_temporal_norm"] == pytest.approx(np.concatenate(jumps).mean(), rel=1e-4)
    # The example's two views are linear projections of 3D points: the true poses are consistent.
    assert summary["video_pca_multiview_error"] < 0.05
    assert set(summary["per_video"]) == {"session0", "session1"}
    assert set(summary["per_keypoint"]["test_pixel_error"]) == set(read_labels(example_dir / "CollectedData.csv").keypoint_names)


def test_a_pca_metric_without_a_saved_pca_is_nan_and_says_why(model_dir):
    # Training saves a PCA only when it could fit one; evaluation never refits it.
    (model_dir / "pca_multiview.npz").unlink()
    out = subprocess.run(
        [sys.executable, ROOT / "scripts/evaluate.py", "--model-dir", model_dir, "--predictions", model_dir / "video_preds/session0.csv", "--metric", "pca_multiview_error"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert f"{model_dir / 'pca_multiview.npz'} not found" in out.stderr
    table = pd.read_csv(model_dir / "video_preds/session0_pca_multiview_error.csv", index_col=0)
    assert len(table) == 60 and table.isna().all().all()


def test_unconverged_warning_compares_with_the_mean_pose_baseline():
    from lightning_pose_lib.metrics import unconverged_warning

    baseline = {"train_pixel_error": 14.0, "validation_pixel_error": 14.0}
    # The unconverged seeds of the generated example ended at 0.5-0.8 of the baseline, the converged at 0.2-0.4.
    assert unconverged_warning({"train_pixel_error": 3.0, "validation_pixel_error": 10.9}, baseline).startswith("validation pixel error 10.90 px")
    assert unconverged_warning({"train_pixel_error": 3.0, "validation_pixel_error": 3.4}, baseline) is None
    # No validation frames: the training frames judge.
    assert "train pixel error" in unconverged_warning({"train_pixel_error": 9.0}, {"train_pixel_error": 14.0})


def test_a_failed_training_is_marked_among_its_seeds_only():
    from lightning_pose_lib.metrics import failed_among_siblings

    errors = pd.Series([3.0, 3.4, 3.2, 10.1, 9.0, 12.0])
    groups = pd.Series(["a", "a", "a", "a", "b", "b"])  # group b has two models: not judged
    assert failed_among_siblings(errors, groups).tolist() == [False, False, False, True, False, False]


def test_the_summary_marks_a_failed_seed_and_says_so(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("summarize", ROOT / "scripts" / "summarize.py")
    summarize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarize)
    errors = {0: 3.1, 1: 3.3, 2: 10.2, 3: 3.0}
    summaries = {f"sup__seed={s}": {"validation_pixel_error": e, "baseline_validation_pixel_error": 14.0} for s, e in errors.items()}
    models = {f"sup__seed={s}": {"variant": "sup", "seed": s} for s in errors}
    table = summarize.summary_table(summaries, models)
    assert table["failed_training"].iloc[:-1].tolist() == [False, False, True, False] and pd.isna(table["failed_training"].iloc[-1])
    assert "warning: sup__seed=2: validation pixel error above 1.5 x the median of its other seeds" in capsys.readouterr().err
