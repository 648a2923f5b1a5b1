"""The real Snakemake workflow on a small generated example: every output file and its format."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from fiftyone_checks import check_fiftyone_app, check_fiftyone_dataset
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.video import probe_video

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow" / "Snakefile")]

TINY_MODEL = {
    "data": {"image_resize_dims": {"height": 64, "width": 128}},
    "training": {
        "train_batch_size": 8, "train_prob": 0.7, "val_prob": 0.15, "min_epochs": 1, "max_epochs": 2,
        "check_val_every_n_epoch": 1, "unfreezing_epoch": 0,
    },
    "model": {"backbone": "resnet18", "backbone_pretrained": False},
    "dali": {"base": {"predict": {"sequence_length": 32}}},
}


def workdir_with(tmp_path: Path, workflow_config: dict) -> Path:
    (tmp_path / "config").mkdir(parents=True)
    (tmp_path / "config" / "model.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(workflow_config))
    return tmp_path


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", "--show-failed-logs", *args],
        capture_output=True, text=True, cwd=workdir,
    )


EXAMPLE_CONFIG = {
    "model_config": "config/model.yaml",
    "datasets": {
        "example": {
            "data_dir": "resources/example",
            "example": {"seed": 0, "sessions": 2, "frames": 40, "labeled": 40},
            # The PCA error metrics need these (training saves the PCAs).
            "model_config": {"data": {"mirrored_column_matches": [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], "columns_for_singleview_pca": [0, 1, 2, 3, 4, 5]}},
        }
    },
    "variants": {
        "supervised": {"model_config": {"model": {"model_type": "heatmap"}}},
        "regression": {"model_config": {"model": {"model_type": "regression"}}},
    },
}


# The finished run also fuses its two models by the Ensemble Kalman Smoother (rules/ensemble.smk;
# in real use, the seeds of a variant).
WITH_ENSEMBLE = {
    **EXAMPLE_CONFIG,
    "datasets": {"example": {**EXAMPLE_CONFIG["datasets"]["example"], "ensembles": {"both": {"models": ["supervised__seed=0", "regression__seed=0"]}}}},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = workdir_with(tmp_path_factory.mktemp("wf"), WITH_ENSEMBLE)
    out = snakemake(workdir)
    assert out.returncode == 0, out.stderr[-5000:]
    return workdir, out


def test_lint_is_clean():
    out = subprocess.run([*SNAKEMAKE, "--lint", "--directory", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr


def test_workflow_outputs(finished):
    workdir, _ = finished
    results = workdir / "results" / "example"
    for model in ("supervised__seed=0", "regression__seed=0"):
        model_dir = results / "models" / model
        status = json.loads((model_dir / "train_status.json").read_text())
        assert status["status"] == "COMPLETED"
        for video in ("session0", "session1"):
            for suffix in ("csv", "h5"):
                table = read_pose_table(model_dir / "video_preds" / f"{video}.{suffix}")
                assert len(table) == 40 and list(table.index) == list(range(40))
                assert table.columns.names == ["scorer", "bodyparts", "coords"]
                assert table.columns.get_level_values("coords")[:3].tolist() == ["x", "y", "likelihood"]
            # Metric tables next to the predictions they describe, one row per frame.
            for metric in ("temporal_norm", "pca_singleview_error", "pca_multiview_error"):
                table = pd.read_csv(model_dir / "video_preds" / f"{video}_{metric}.csv", index_col=0)
                assert len(table) == 40 and table.shape[1] == 12, metric
        for metric in ("pixel_error", "pca_singleview_error", "pca_multiview_error"):
            table = pd.read_csv(model_dir / f"predictions_{metric}.csv", index_col=0)
            assert set(table["set"]) == {"train", "validation", "test"}, metric
        assert (workdir / "logs" / "train" / "example" / f"{model}.log").exists()
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["model"][:2]) == {"supervised__seed=0", "regression__seed=0"} and summary["model"].iloc[-1] == "mean_pose_baseline"
    assert list(summary.columns[:4]) == ["model", "variant", "seed", "train_frames"]
    models = summary[~summary["variant"].isin(["mean_pose_baseline", "ensemble"])]  # the ensemble: its own test
    for column in ("test_pixel_error", "test_pixel_error_std", "video_temporal_norm", "video_temporal_norm_std", "video_pca_singleview_error", "video_pca_multiview_error"):
        assert models[column].notna().all(), column
    assert (models["model"] == models["variant"] + "__seed=0").all() and (models["seed"] == 0).all()
    assert "<table" in (results / "summary.html").read_text()  # what the report shows inline
    plots = results / "plots"
    for name in ("pixel_error_per_keypoint", "video_metrics", "gallery_worst_frames", "traces/session0", "traces/session1"):
        assert (plots / f"{name}.png").stat().st_size > 10_000, name
    # A labeled video per model and video, as long and as large as its source.
    for model in ("supervised__seed=0", "regression__seed=0"):
        for video in ("session0", "session1"):
            labeled = probe_video(results / "models" / model / "video_preds" / "labeled_videos" / f"{video}_labeled.mp4")
            source = probe_video(workdir / "resources" / "example" / "videos" / f"{video}.mp4")
            assert (labeled.num_frames, labeled.height, labeled.width, labeled.fps) == (source.num_frames, source.height, source.width, source.fps)


def test_ensemble_outputs_and_a_changed_ensemble_reruns_only_the_fusion(finished):
    workdir, _ = finished
    results = workdir / "results" / "example"
    ensemble = results / "ensembles" / "both"
    coords = ["x", "y", "likelihood", "x_ens_median", "y_ens_median", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var"]
    for video in ("session0", "session1"):
        for suffix in ("csv", "h5"):
            table = read_pose_table(ensemble / "video_preds" / f"{video}.{suffix}")
            assert len(table) == 40 and table.columns.get_level_values("coords")[:9].tolist() == coords
        for metric in ("temporal_norm", "pca_singleview_error", "pca_multiview_error", "truth_error"):
            assert pd.read_csv(ensemble / "video_preds" / f"{video}_{metric}.csv", index_col=0).shape == (40, 12), metric
        assert probe_video(ensemble / "video_preds" / "labeled_videos" / f"{video}_labeled.mp4").num_frames == 40
        assert (results / "plots" / "traces" / f"{video}_ensemble_both.png").stat().st_size > 10_000
    log = (workdir / "logs/ensemble_video/example/both/session0.log").read_text()
    assert "2 members, 40 frames x 12 keypoints fused" in log and "smoothing parameter per keypoint" in log, log
    summary = pd.read_csv(results / "summary.csv").set_index("model")
    assert summary.loc["both", "variant"] == "ensemble"
    for column in ("video_truth_error", "video_temporal_norm", "video_pca_multiview_error", "validation_pixel_error"):
        assert summary.loc[["supervised__seed=0", "regression__seed=0", "both"], column].notna().all(), column
    # Other members: the fusion (and what shows it) again, no training and no prediction.
    config = {"datasets": {"example": {"ensembles": {"both": {"models": ["supervised__seed=0"]}}}}}  # merged into config.yaml's
    (workdir / "one_member.yaml").write_text(yaml.safe_dump(config))
    jobs = dry_run_jobs(workdir, "--configfile", "one_member.yaml")
    assert jobs["ensemble_video"] == "2" and not {"train", "predict_videos", "video_prediction"} & set(jobs), jobs
    assert not any(job.startswith("evaluate_example_") for job in jobs), jobs


def test_report(finished):
    workdir, _ = finished
    out = snakemake(workdir, "--report", "report.html")
    assert out.returncode == 0, out.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    # Captions, categories and labels of the report items are all in the (self-contained) page.
    for text in ("pixel_error_per_keypoint.png", "gallery_worst_frames.png", "session0_labeled.mp4", "summary.csv", "worst first", "4. labeled videos"):
        assert text in html, text


def test_job_logs_show_progress(finished):
    workdir, _ = finished
    train = (workdir / "logs/train/example/supervised__seed=0.log").read_text()
    assert " INFO epoch 1/2 | loss " in train and " INFO epoch 2/2 | loss " in train and "| 0 s left" in train, train[-3000:]
    predict = (workdir / "logs/predict_videos/example/supervised__seed=0/chunk0000.log").read_text()
    assert "session0.mp4: 40 frames predicted in " in predict and "2/2 videos done" in predict, predict[-3000:]


# The FiftyOne dataset (workflow/rules/fiftyone.smk): an explicit target, with the optional extra.
@pytest.fixture(scope="module")
def fiftyone_built(finished):
    pytest.importorskip("fiftyone", reason="the optional FiftyOne extra is not installed (pip install -e '.[fiftyone]')")
    workdir, _ = finished
    (workdir / "with_fiftyone.yaml").write_text(yaml.safe_dump({**EXAMPLE_CONFIG, "fiftyone": {"video_frames": 3}}))
    out = snakemake(workdir, "fiftyone_example", "--configfile", "with_fiftyone.yaml")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return workdir


def test_fiftyone_dataset_holds_the_labels_and_every_models_predictions(fiftyone_built):
    check_fiftyone_dataset(fiftyone_built)


def test_fiftyone_app_shows_the_samples_in_headless_chromium(fiftyone_built, tmp_path):
    check_fiftyone_app(fiftyone_built, tmp_path)


def job_seconds(workdir: Path, rule: str) -> list[float]:
    """How long each job of ``rule`` took, from the start and end times Snakemake records."""
    records = [json.loads(path.read_text()) for path in (workdir / ".snakemake/metadata").rglob("*") if path.is_file()]
    return [r["endtime"] - r["starttime"] for r in records if r.get("rule") == rule]


def test_linking_a_prediction_into_place_starts_no_python(finished):
    # A run: or script: job starts Python (a run: job parses the whole workflow again): seconds.
    seconds = job_seconds(finished[0], "video_prediction")  # one record per output: csv and h5
    assert len(seconds) == 2 * 2 * 2 and max(seconds) < 2.0, seconds


def test_one_dataset_alone_and_a_report_of_what_has_run(finished):
    workdir, _ = finished
    # A second dataset, not run yet: a report of the first (all that exists) must still work.
    other = {**EXAMPLE_CONFIG["datasets"]["example"], "data_dir": "resources/other"}
    config = {**EXAMPLE_CONFIG, "datasets": {**EXAMPLE_CONFIG["datasets"], "other": other}}
    (workdir / "two_datasets.yaml").write_text(yaml.safe_dump(config))
    with_other = ("--configfile", "two_datasets.yaml")
    assert dry_run_jobs(workdir, "dataset_example", *with_other) == {}  # done
    assert dry_run_jobs(workdir, "dataset_other", *with_other)["make_example_other"] == "1"
    out = snakemake(workdir, *with_other, "--report", "partial.html")
    assert out.returncode == 0, out.stderr[-3000:]
    html = (workdir / "partial.html").read_text()
    assert "pixel_error_per_keypoint.png" in html and "session0_labeled.mp4" in html


def test_rerun_does_nothing_and_a_lost_output_is_redone_alone(finished):
    workdir, _ = finished
    out = snakemake(workdir, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr
    # As after a failed prediction job: its outputs and everything downstream are missing.
    model = workdir / "results/example/models/supervised__seed=0"
    for path in (model / "video_preds/session1.csv", model / "metrics/summary.json", workdir / "results/example/summary.csv"):
        path.unlink()
    out = snakemake(workdir, "-n", "--quiet", "rules")
    jobs = dict(line.split()[:2] for line in out.stdout.splitlines() if line.strip() and line.split()[-1].isdigit() and len(line.split()) == 2)
    # The lost video's prediction (re-linked from the model's prediction store: no model is loaded),
    # its model's evaluation, and what shows them: the comparison, that video's trace and labeled
    # video, and the gallery (its model's pixel errors are rewritten).
    # The ensemble fuses that video again and follows the same way.
    assert jobs == {
        "all": "1", "video_prediction": "1", "evaluate_example_supervised__seed_0": "1", "summarize": "1", "plot_trace": "1", "labeled_video": "1", "gallery": "1",
        "ensemble_video": "1", "ensemble_labeled": "1", "evaluate_ensemble_example_both": "1", "plot_ensemble_trace": "1", "ensemble_labeled_video": "1",
        "total": "12",
    }, out.stdout


def test_bad_labels_stop_the_workflow_with_the_file_named(tmp_path, example_dir):
    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    (data / "CollectedData.csv").write_text("scorer,a,a,a\nbodyparts,nose,nose,tail\ncoords,x,y,x\nimg.png,1,2,3\n")
    config = {**EXAMPLE_CONFIG, "datasets": {"mine": {"data_dir": str(data)}}, "variants": {"supervised": {}}}
    out = snakemake(workdir_with(tmp_path / "wf", config))
    assert out.returncode != 0
    assert f"error: {data / 'CollectedData.csv'}: odd number of coordinate columns" in out.stdout + out.stderr
    assert not list((tmp_path / "wf").rglob("train_status.json"))


def test_a_train_frames_sweep_gets_its_plot_and_diagnostics_can_be_narrowed(tmp_path):
    variants = {"supervised": {"sweep": {"training.train_frames": [10, 20]}, "seeds": [0, 1]}}
    diagnostics = {"compare_models": ["supervised__train_frames=20__seed=0"], "videos": ["session1"]}
    config = {**EXAMPLE_CONFIG, "variants": variants, "diagnostics": diagnostics}
    out = snakemake(workdir_with(tmp_path, config), "-n", "--quiet", "rules")
    jobs = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) == 2 and line.split()[-1].isdigit())
    assert jobs["train"] == "4" and jobs["plot_train_frames"] == "1", out.stdout + out.stderr
    assert jobs["labeled_video"] == "1" and jobs["plot_trace"] == "1"  # one model, one video
    # A number of videos: the first ones by name, for every compared model (here all four).
    out = snakemake(workdir_with(tmp_path / "first", {**config, "diagnostics": {"videos": 1}}), "-n")
    assert "results/example/plots/traces/session0.png" in out.stdout and "traces/session1.png" not in out.stdout, out.stdout[-3000:]
    assert out.stdout.count("video_preds/labeled_videos/session0_labeled.mp4") >= 4 and "session1_labeled.mp4" not in out.stdout
    bad = {**config, "diagnostics": {"compare_models": ["nope"]}}
    out = snakemake(workdir_with(tmp_path / "bad", bad), "-n")
    assert out.returncode != 0 and "diagnostics.compare_models names unknown models ['nope']" in out.stdout + out.stderr


def test_unknown_model_key_in_workflow_config(tmp_path):
    config = {**EXAMPLE_CONFIG, "variants": {"bad": {"model_config": {"training": {"max_epoch": 3}}}}}
    out = snakemake(workdir_with(tmp_path, config), "-n")
    assert out.returncode != 0 and "training.max_epoch" in out.stdout + out.stderr


# The throughput benchmark (rule benchmark, workflow/rules/benchmark.smk): an explicit target only.
TINY_BENCHMARK = {"kinds": ["heatmap"], "backbone": "resnet18", "size": 64, "copies": 2, "batch": 16, "decoders": 1, "train_epochs": 1, "train_steps": 3}


def dry_run_jobs(workdir: Path, *targets: str) -> dict:
    out = snakemake(workdir, *targets, "-n", "--quiet", "rules")
    assert out.returncode == 0, out.stdout + out.stderr
    return dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) == 2 and line.split()[-1].isdigit())


def test_benchmark_target_runs_the_throughput_benchmark_and_is_not_part_of_all(tmp_path):
    example = {**EXAMPLE_CONFIG["datasets"]["example"], "example": {"seed": 0, "sessions": 1, "frames": 40, "labeled": 40}}
    config = {**EXAMPLE_CONFIG, "datasets": {"example": example}, "benchmark": TINY_BENCHMARK}
    workdir = workdir_with(tmp_path, config)
    assert not any(rule.startswith("benchmark") for rule in dry_run_jobs(workdir)), "the default target must not benchmark"
    # benchmark_all: the configured kinds; any other kind by its file's path.
    assert dry_run_jobs(workdir, "benchmark_all", "results/benchmarks/example/throughput_context.json")["benchmark"] == "2"

    # The real rule on CPU, run from another working directory than the repository.
    out = snakemake(workdir, "benchmark_all")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    figures = json.loads((workdir / "results/benchmarks/example/throughput_heatmap.json").read_text())
    for key in ("model_only_fps", "end_to_end_fps", "plain_loop_fps", "train_steps_per_s_real", "train_steps_per_s_synthetic"):
        assert figures[key] > 0, key
    for key in ("ratio_end_to_end_over_model_only", "ratio_end_to_end_over_plain_loop", "ratio_train_real_over_synthetic"):
        assert 0 < figures[key] < 100, key
    assert figures["device"] and figures["versions"]["torch"] and figures["versions"]["lightning_pose_lib"]
    assert figures["model"] == "heatmap resnet18 64x64, batch 16"
    log = (workdir / "logs/benchmark/example/heatmap.log").read_text()
    assert "ratio_end_to_end_over_model_only:" in log and "versions:" in log, log[-3000:]
    assert not (workdir / "results/benchmarks/example/work_heatmap").exists()  # scratch removed


def test_benchmark_of_a_dataset_without_video_folder_is_a_clear_error(tmp_path, example_dir):
    data = tmp_path / "data"
    shutil.copytree(example_dir, data, ignore=shutil.ignore_patterns("videos"))
    config = {**EXAMPLE_CONFIG, "datasets": {"mine": {"data_dir": str(data), "predict_videos": []}}, "variants": {"supervised": {}}}
    workdir = workdir_with(tmp_path / "wf", config)
    assert "train" in dry_run_jobs(workdir)  # the rest of the workflow is unaffected
    out = snakemake(workdir, "-n", "benchmark_all")
    assert out.returncode != 0
    assert f"{data / 'videos'}: video folder not found; the benchmark of dataset 'mine'" in out.stdout + out.stderr, out.stdout + out.stderr
    bad = workdir_with(tmp_path / "bad", {**config, "benchmark": {"datasets": ["nope"]}})
    out = snakemake(bad, "-n", "benchmark_all")
    assert out.returncode != 0 and "benchmark.datasets names unknown datasets ['nope']" in out.stdout + out.stderr
