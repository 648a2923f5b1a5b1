#!/usr/bin/env python
"""Scale figures of the workflow: planning time and per-video prediction overhead.

    python scripts/benchmark.py planning [--videos 500] [--models 3] [--predict-videos 8]
        [--model-dir DIR --video FILE ...]

1. Planning: makes a dataset (the synthetic example's labels) with ``--videos`` tiny fake video files
   and ``--models`` models, and times ``snakemake -n`` of the whole workflow on it (nothing trained
   yet, so every job is planned).
2. Prediction: runs scripts/predict.py as one job over ``--predict-videos`` real videos and splits
   its wall time into the start-up paid once per job (interpreter, imports, model load, GPU
   start-up: "job start to first frame") and the time per video. Uses ``--model-dir`` and
   ``--video`` files when given (e.g. on a GPU node), else trains a one-epoch model on the
   generated example and predicts copies of its videos. Runs on CPU or GPU, whichever is there.

Prints one line per figure.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow/Snakefile"), "--workflow-profile", "none"]


def make_example(folder: Path, frames: int = 100) -> None:
    from lightning_pose_lib.example import make_example as generate

    generate(folder, seed=0, n_sessions=2, frames_per_session=frames, n_labeled=40)


def benchmark_planning(work: Path, n_videos: int, n_models: int, videos_per_job: int) -> None:
    data = work / "data"
    make_example(data, frames=20)
    fake = data / "many"
    fake.mkdir()
    for i in range(n_videos):  # planning never opens a video: tiny placeholder files suffice
        (fake / f"video{i:04d}.mp4").write_bytes(b"\0" * 1024)
    config = {
        "model_config": str(ROOT / "config/model.yaml"),
        "datasets": {"many": {"data_dir": str(data), "predict_videos": ["many/*.mp4"], "video_dir": None}},
        "variants": {"supervised": {"model_config": {"model": {"model_type": "heatmap"}}, "seeds": list(range(n_models))}},
        "predict": {"videos_per_job": videos_per_job},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    command = [*SNAKEMAKE, "--directory", str(work), "--configfile", str(work / "config.yaml"), "-n", "--quiet", "rules"]
    start, cpu_start = time.perf_counter(), _children_cpu()
    out = subprocess.run(command, capture_output=True, text=True, cwd=work)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    if out.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    stats = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    print(f"planning: snakemake -n, {n_videos} videos x {n_models} models ({videos_per_job} videos per prediction job): "
          f"{seconds:.1f} s for {stats.get('total')} jobs ({', '.join(f'{k} {v}' for k, v in stats.items() if k != 'total')})")
    # CPU time does not count waiting: on a busy machine the wall time is a multiple of it.
    print(f"planning: CPU time {cpu:.1f} s ({cpu / seconds:.2f} of the wall time)")
    if shutil.which("scontrol"):
        # Snakemake's SLURM executor plugin asks the SLURM controller for its settings whenever
        # Snakemake starts, whatever the executor; without an answering controller this waits.
        start = time.perf_counter()
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
        print(f"planning: of the wall time, waiting for `scontrol show config` (SLURM executor plugin, at Snakemake's start): {time.perf_counter() - start:.1f} s")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def benchmark_prediction(work: Path, n_videos: int, model_dir: str | None, videos: list[str]) -> None:
    if model_dir is None:
        data = work / "predict-data"
        make_example(data, frames=100)
        model_dir = str(work / "model")
        # The demo's small model: the base config with the example dataset's settings on top.
        example = work / "example_model.yaml"
        example.write_text(yaml.safe_dump(yaml.safe_load((ROOT / "config/config.yaml").read_text())["datasets"]["example"]["model_config"]))
        train = [sys.executable, str(ROOT / "scripts/train.py"), "--config", str(ROOT / "config/model.yaml"), "--config", str(example),
                 "--model-dir", model_dir, f"data.data_dir={data}", "training.max_epochs=1", "training.min_epochs=1"]
        out = subprocess.run(train, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"training the benchmark model failed:\n{out.stderr[-3000:]}")
        copies = work / "videos"
        copies.mkdir()
        for i in range(n_videos):  # the example's videos under distinct names
            os.link(data / "videos" / f"session{i % 2}.mp4", copies / f"video{i:03d}.mp4")
        videos = sorted(map(str, copies.iterdir()))
    report = work / "report.json"
    command = [sys.executable, str(ROOT / "scripts/predict.py"), "--model-dir", model_dir, "--output-dir", str(work / "preds"), "--report", str(report), *videos]
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"prediction failed:\n{out.stderr[-3000:]}")
    records = [r for r in json.loads(report.read_text())["videos"] if not r["skipped"]]
    video_seconds = sum(r["seconds"] for r in records)
    frames = sum(r["frames"] for r in records)
    startup = wall - video_seconds  # interpreter, imports, model load, device start-up, writing the report
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"prediction ({device}): one job, {len(records)} videos, {frames} frames: {wall:.1f} s wall")
    print(f"prediction: job start to first frame (start-up, paid once per job): {startup:.1f} s")
    print(f"prediction: per video {video_seconds / len(records):.2f} s for {frames / len(records):.0f} frames ({frames / video_seconds:.0f} frames/s)")
    print(f"prediction: start-up overhead per video: {startup:.1f} s with one video per job, "
          f"{startup / len(records):.2f} s with {len(records)} videos per job")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=500, help="fake videos for the planning benchmark")
    parser.add_argument("--models", type=int, default=3, help="models (seeds) for the planning benchmark")
    parser.add_argument("--videos-per-job", type=int, default=20)
    parser.add_argument("--predict-videos", type=int, default=8, help="videos predicted in one job")
    parser.add_argument("--model-dir", default=None, help="a trained model folder to predict with (default: train a tiny one)")
    parser.add_argument("--video", action="append", default=[], help="real video to predict (repeatable; with --model-dir)")
    parser.add_argument("--skip-planning", action="store_true")
    parser.add_argument("--skip-prediction", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lp-benchmark-") as tmp:
        if not args.skip_planning:
            (Path(tmp) / "plan").mkdir()
            benchmark_planning(Path(tmp) / "plan", args.videos, args.models, args.videos_per_job)
        if not args.skip_prediction:
            (Path(tmp) / "predict").mkdir()
            benchmark_prediction(Path(tmp) / "predict", args.predict_videos, args.model_dir, args.video)


if __name__ == "__main__":
    main()
