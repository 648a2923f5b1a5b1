"""Training and prediction through the library and the standalone scripts, on small real data."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, logged_scalars, tiny_overrides
from lightning_pose_lib.callbacks import TrainingSpeed
from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.labels import read_labels, read_pose_table
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.predict import load_model, predict_video, predict_videos
from lightning_pose_lib.status import is_complete
from lightning_pose_lib.train import train
from lightning_pose_lib.video import probe_video


@pytest.fixture(scope="module")
def trained(example_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    cfg = load_config(overrides=tiny_overrides(example_dir))
    metrics = train(cfg, model_dir)
    return model_dir, metrics


def test_model_folder_is_complete(trained, example_dir):
    model_dir, metrics = trained
    assert is_complete(model_dir)
    for name in ("config.yaml", "provenance.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "predictions.csv"):
        assert (model_dir / name).is_file(), name
    assert list((model_dir / "tb_logs").rglob("events.out.tfevents.*"))
    assert {"train_pixel_error", "validation_pixel_error", "test_pixel_error"} <= set(metrics)
    provenance = yaml.safe_load((model_dir / "provenance.yaml").read_text())
    assert provenance["labels_sha256"] and provenance["seeds"]["rng_seed_model_pt"] == 0
    assert "torch" in provenance["libraries"]
    saved = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert saved["training"]["max_epochs"] == 2
    # Two epochs leave the model near the mean pose: the status (and the log) say so.
    assert "mean-pose baseline" in json.loads((model_dir / "train_status.json").read_text())["warning"]


def test_labeled_predictions_have_sets_and_original_pixels(trained, example_dir):
    model_dir, _ = trained
    table = read_pose_table(model_dir / "predictions.csv")
    labels = read_labels(example_dir / "CollectedData.csv")
    assert list(table.index) == labels.image_paths
    sets = table[("set", "", "")]
    assert set(sets) == {"train", "validation", "test"}
    assert table.columns.get_level_values("coords")[:3].tolist() == ["x", "y", "likelihood"]
    xs = table.xs("x", axis=1, level="coords").to_numpy()
    assert np.nanmax(xs) <= 256 and np.nanmin(xs) >= -1  # original frames are 256 wide


def test_video_prediction_has_every_frame(trained, example_dir, tmp_path):
    model_dir, _ = trained
    model = load_model(model_dir)
    video = example_dir / "videos" / "session0.mp4"
    table = predict_video(model, video, tmp_path / "session0.csv", tmp_path / "session0.h5", batch_size=16, progress=False)
    assert len(table) == probe_video(video).num_frames == 60
    csv = read_pose_table(tmp_path / "session0.csv")
    h5 = read_pose_table(tmp_path / "session0.h5")
    assert list(csv.index) == list(range(60))
    np.testing.assert_allclose(csv.to_numpy(), h5.to_numpy(), atol=1e-3)
    assert list(csv.columns.get_level_values("bodyparts").unique()) == read_labels(example_dir / "CollectedData.csv").keypoint_names
    likelihood = csv.xs("likelihood", axis=1, level="coords").to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()


def test_many_videos_concurrently_equal_one_at_a_time(trained, example_dir, tmp_path):
    model_dir, _ = trained
    model = load_model(model_dir)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    videos = [example_dir / "videos/session0.mp4", bad, example_dir / "videos/session1.mp4"]
    jobs = [(v, tmp_path / "many" / f"{v.stem}.csv", tmp_path / "many" / f"{v.stem}.h5") for v in videos]
    results = predict_videos(model, jobs, batch_size=16, decoders=3, progress=False)
    assert [r.video for r in results] == [str(v) for v in videos]
    assert isinstance(results[1].outcome, InputError) and str(bad) in str(results[1].outcome)
    for video, result in zip(videos[::2], results[::2]):
        alone = predict_video(model, video, tmp_path / "one" / f"{video.stem}.csv", batch_size=64, progress=False)
        np.testing.assert_allclose(result.outcome.to_numpy(), alone.to_numpy(), atol=1e-2)  # batches mix videos differently: float rounding only
        assert (tmp_path / "many" / f"{video.stem}.h5").exists()
    assert not (tmp_path / "many" / "broken.csv").exists()


def test_a_video_whose_files_cannot_be_written_is_reported_and_the_others_are_written(trained, example_dir, tmp_path):
    """Tables are written by separate processes: their failures still come back, per video."""
    model = load_model(trained[0])
    (tmp_path / "blocked").write_text("a file where the output folder should be")
    videos = [example_dir / "videos/session0.mp4", example_dir / "videos/session1.mp4"]
    jobs = [(videos[0], tmp_path / "blocked" / "session0.csv", None), (videos[1], tmp_path / "ok" / "session1.csv", tmp_path / "ok" / "session1.h5")]
    bad, good = predict_videos(model, jobs, batch_size=16, decoders=2, progress=False)
    assert isinstance(bad.outcome, InputError) and "session0.csv" in str(bad.outcome) and "cannot write" in str(bad.outcome)
    assert len(good.outcome) > 0 and good.seconds > 0
    assert (tmp_path / "ok" / "session1.csv").exists() and (tmp_path / "ok" / "session1.h5").exists()


def test_same_seed_same_result(example_dir, tmp_path):
    cfg = load_config(overrides=tiny_overrides(example_dir, **{"training.max_epochs": 1}))
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    assert a == b


def run_script(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_scripts_end_to_end(trained, example_dir, tmp_path):
    model_dir, _ = trained
    out = run_script(ROOT / "scripts/predict.py", "--model-dir", model_dir, "--output-dir", tmp_path, example_dir / "videos/session1.mp4")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "session1.csv").exists() and (tmp_path / "session1.h5").exists()
    again = run_script(ROOT / "scripts/predict.py", "--model-dir", model_dir, "--output-dir", tmp_path, example_dir / "videos/session1.mp4")
    assert "already predicted" in again.stderr
    out = run_script(ROOT / "scripts/evaluate.py", "--model-dir", model_dir)
    assert out.returncode == 0, out.stderr
    summary = json.loads((model_dir / "metrics/summary.json").read_text())
    assert summary["baseline_test_pixel_error"] > 0 and "test_pixel_error" in summary


@pytest.mark.parametrize(
    "make_bad, problem",
    [
        (lambda d: (d / "CollectedData.csv").write_text("bodyparts,a,a\ncoords,x,y\nimg.png,1,2\n"), "missing header row"),
        (lambda d: (d / read_labels(d / "CollectedData.csv").image_paths[3]).unlink(), "image file not found"),
    ],
)
def test_bad_input_stops_with_one_clear_line(example_dir, tmp_path, make_bad, problem):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    make_bad(data)
    out = run_script(ROOT / "scripts/train.py", "--model-dir", tmp_path / "m", *tiny_overrides(data))
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and problem in last and str(data) in last
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "m" / "train_status.json").exists() or "COMPLETED" not in (tmp_path / "m" / "train_status.json").read_text()


def test_unknown_key_on_the_command_line(example_dir, tmp_path):
    out = run_script(ROOT / "scripts/train.py", "--model-dir", tmp_path / "m", *tiny_overrides(example_dir), "training.max_epoch=3")
    assert out.returncode == 2 and "training.max_epoch" in out.stderr and "Traceback" not in out.stderr


def test_unreadable_video(trained, tmp_path):
    model_dir, _ = trained
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    out = run_script(ROOT / "scripts/predict.py", "--model-dir", model_dir, "--output-dir", tmp_path / "out", bad)
    assert out.returncode == 2 and str(bad) in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out" / "broken.csv").exists()


def test_mirror_mouse_train_and_predict(mirror_mouse, tmp_path):
    cfg = load_config(overrides=tiny_overrides(mirror_mouse, **{"training.max_epochs": 1, "data.image_resize_dims.width": 64}))
    train(cfg, tmp_path / "m")
    model = load_model(tmp_path / "m")
    table = predict_video(model, mirror_mouse / "videos/test_vid.mp4", tmp_path / "v.csv", tmp_path / "v.h5", batch_size=128, progress=False)
    assert len(table) == 994
    assert table.columns.get_level_values("bodyparts").unique().size == 17
    assert not np.isnan(table.to_numpy()).any()


SEMI = {
    "data.video_dir": "videos",
    "data.mirrored_column_matches": "[[0,1,2,3,4,5],[6,7,8,9,10,11]]",
    "data.columns_for_singleview_pca": "[0,1,2,3,4,5]",
    "dali.base.train.sequence_length": 8,
    "dali.context.train.batch_size": 8,
    "callbacks.anneal_weight.freeze_until_epoch": 0,
    "training.max_epochs": 1,
}


def test_semi_supervised_training_logs_every_selected_loss(example_dir, tmp_path):
    losses = ["temporal", "pca_singleview", "pca_multiview"]
    cfg = load_config(overrides=tiny_overrides(example_dir, **SEMI, **{"model.losses_to_use": f"[{','.join(losses)}]"}))
    train(cfg, tmp_path)
    tags = logged_scalars(tmp_path)
    for name in losses:
        assert {f"train_{name}_loss", f"train_{name}_loss_weighted"} <= tags
    assert {"train_heatmap_kl_loss", "unsupervised_importance", "val_pixel_error", "train_steps_per_s"} <= tags
    assert json.loads((tmp_path / "train_status.json").read_text())["train_steps_per_s"] > 0
    assert (tmp_path / "pca_singleview.npz").exists() and (tmp_path / "pca_multiview.npz").exists()


def test_context_model_predicts_every_frame_whatever_the_batch_size(example_dir, tmp_path):
    overrides = {**SEMI, "model.model_type": "heatmap_mhcrnn", "model.do_context": "true", "model.losses_to_use": "[temporal]"}
    cfg = load_config(overrides=tiny_overrides(example_dir, **overrides))
    train(cfg, tmp_path / "m")
    assert "train_temporal_loss" in logged_scalars(tmp_path / "m")
    model = load_model(tmp_path / "m")
    video = example_dir / "videos" / "session0.mp4"
    tables = [predict_video(model, video, tmp_path / f"b{b}.csv", batch_size=b, progress=False) for b in (7, 64)]
    assert len(tables[0]) == len(tables[1]) == 60
    np.testing.assert_allclose(tables[0].to_numpy(), tables[1].to_numpy(), atol=1e-3)
    static = read_pose_table(tmp_path / "heads" / "b64_static.csv")
    context = read_pose_table(tmp_path / "heads" / "b64_context.csv")
    assert len(static) == len(context) == 60
    # each keypoint took the more confident head
    best = np.maximum(static.xs("likelihood", axis=1, level="coords").to_numpy(), context.xs("likelihood", axis=1, level="coords").to_numpy())
    np.testing.assert_allclose(tables[1].xs("likelihood", axis=1, level="coords").to_numpy(), best, atol=1e-4)
    # two videos through one decoder share batches (a batch holds the end of one and the start of
    # the next); each video's edges still get their own edge frames as context
    videos = [example_dir / "videos" / f"session{i}.mp4" for i in (0, 1)]
    shared = predict_videos(model, [(v, tmp_path / "shared" / f"{v.stem}.csv") for v in videos], batch_size=15, decoders=1, progress=False)
    for video, result in zip(videos, shared):
        alone = predict_video(model, video, tmp_path / "alone" / f"{video.stem}.csv", batch_size=64, progress=False)
        np.testing.assert_allclose(result.outcome.to_numpy(), alone.to_numpy(), atol=1e-3)
    labeled = read_pose_table(tmp_path / "m" / "predictions.csv")
    assert len(labeled) == 40 and not np.isnan(labeled.drop(columns=[("set", "", "")]).to_numpy(dtype=float)).any()


def test_training_speed_leaves_out_the_first_epoch():
    speed = TrainingSpeed()
    assert speed.steps_per_second() is None  # no epoch of two steps
    speed.epochs = [(9, 9.0)]
    assert speed.steps_per_second() == 1.0  # a single epoch counts
    speed.epochs = [(9, 9.0), (9, 1.0), (18, 2.0)]  # the first one warmed up
    assert speed.steps_per_second() == 9.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_labeled_frames_are_predicted_on_the_training_device(example_dir, tmp_path, monkeypatch):
    import lightning_pose_lib.train as training

    devices = []
    predict_labeled = training.predict_labeled
    monkeypatch.setattr(training, "predict_labeled", lambda model, *args, **kwargs: devices.append(model.device.type) or predict_labeled(model, *args, **kwargs))
    overrides = tiny_overrides(example_dir, **{"training.max_epochs": 1, "training.accelerator": "gpu", "model.losses_to_use": "[]"})
    train(load_config(overrides=overrides), tmp_path / "model")
    assert devices == ["cuda"]


def test_training_takes_no_cluster_environment_from_its_surroundings(example_dir, tmp_path, monkeypatch, caplog):
    """Inside a SLURM job Lightning would take SLURM's environment, whose SIGUSR1 handler requeues
    the job (Snakemake, not SLURM, reruns our jobs), and where mpi4py is installed detecting MPI
    initialises it (0.53 s on the H100 machine): training names Lightning's own environment."""
    from lightning_fabric.plugins import environments

    detected = []
    for name in ("TorchElasticEnvironment", "LSFEnvironment", "MPIEnvironment"):  # only Lightning's choice of environment asks these
        monkeypatch.setattr(getattr(environments, name), "detect", staticmethod(lambda name=name: detected.append(name) or False))
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train_model")
    with caplog.at_level(logging.INFO):
        train(load_config(overrides=tiny_overrides(example_dir, **{"training.max_epochs": 1, "model.losses_to_use": "[]"})), tmp_path / "model")
    assert detected == []
    assert "auto-requeue" not in caplog.text


def test_labeled_frames_are_read_by_several_threads_as_one_reads_them(example_dir, monkeypatch):
    """Reading the labeled images is most of a training's start when frames are large: several
    threads decode and resize them (PIL and torch release the interpreter lock); rows, sizes and
    pixels come out as one thread gives them."""
    import threading
    import time

    import lightning_pose_lib.data.labeled as labeled
    from lightning_pose_lib.dataset import load_dataset

    dataset = load_dataset(load_config(overrides=tiny_overrides(example_dir)))
    rows = dataset.rows("train")
    threads = set()
    read_image = labeled.read_image

    def slow_read(path):
        threads.add(threading.get_ident())
        time.sleep(0.01)  # long enough for the threads to overlap
        return read_image(path)

    monkeypatch.setattr(labeled, "read_image", slow_read)
    monkeypatch.setattr(labeled, "available_cpus", lambda: 4)
    frames = labeled.LabeledFrames(dataset.labels, dataset.data_dir, (64, 128), rows)
    assert len(threads) > 1
    monkeypatch.setattr(labeled, "DECODE_THREADS", 1)
    alone = labeled.LabeledFrames(dataset.labels, dataset.data_dir, (64, 128), rows)
    assert frames.rows.tolist() == alone.rows.tolist() == list(rows)
    assert torch.equal(frames.images, alone.images) and torch.equal(frames.orig_hw, alone.orig_hw)


def test_frames_read_at_the_start_are_not_read_again_at_the_end(example_dir, monkeypatch):
    """The labeled frames' predictions at a training's end take the training and validation
    frames decoded at its start and read only the others, to the same pixels."""
    import lightning_pose_lib.data.labeled as labeled
    from lightning_pose_lib.dataset import load_dataset

    dataset = load_dataset(load_config(overrides=tiny_overrides(example_dir)))
    sets = [labeled.LabeledFrames(dataset.labels, dataset.data_dir, (64, 128), dataset.rows(name)) for name in ("train", "validation")]
    fresh = labeled.LabeledFrames(dataset.labels, dataset.data_dir, (64, 128))
    read = []
    read_image = labeled.read_image
    monkeypatch.setattr(labeled, "read_image", lambda path: read.append(path) or read_image(path))
    reused = labeled.LabeledFrames(dataset.labels, dataset.data_dir, (64, 128), decoded=sets)
    others = sorted(set(range(len(dataset.labels.keypoints))) - set(dataset.rows("train")) - set(dataset.rows("validation")))
    assert others and sorted(read) == sorted(dataset.data_dir / dataset.labels.image_paths[row] for row in others)
    assert torch.equal(reused.images, fresh.images) and torch.equal(reused.orig_hw, fresh.orig_hw)
    assert torch.equal(reused.keypoints.nan_to_num(-1), fresh.keypoints.nan_to_num(-1))
    read.clear()
    labeled.LabeledFrames(dataset.labels, dataset.data_dir, (32, 64), decoded=sets)  # another size: all read
    assert len(read) == len(dataset.labels.keypoints)
