#!/usr/bin/env python
"""Cold start: a job's fixed cost, timed on the real entry points run as fresh processes.

    python scripts/benchmark.py cold_start --out OUT [--data DIR] [--epochs 100] [--videos 1 8 32]
        [--device auto|cpu] [--backend auto|pyav|dali] [--set key=value ...]

1. Training: scripts/train.py trains ``--epochs`` epochs on ``--data`` (a dataset folder: label
   CSV and ``videos/``; default the mirror-mouse example beside the repository) with
   config/model.yaml and the ``--set`` overrides: wall time of the process, split (from the lines
   the process logs) into its start (until the first training step is done), the epochs, the end
   (the labeled frames predicted, the model folder written) and the exit; and its steady training
   steps/s (train_status.json).
2. Prediction: scripts/predict.py with that model on 1, 8 and 32 (``--videos``) copies (hard links)
   of the first video of ``DIR/videos``, one fresh process each, as a job runs: wall time; fixed
   cost, from process start to the first batch predicted (the process logs it); first-pass
   frames/s, the frames over the time from then until every video's files are written (logged
   too); the exit, from then until the process is gone; and the warm rate: the same videos
   predicted a second time by one process that already predicted them once (model, decoders and
   GPU warm; that pass also ends with its files written). Ratios: first pass / warm, fixed cost /
   wall.

Prints one line per figure and writes them to OUT/cold_start.json; each process's log goes to
OUT/train.log, OUT/predict_N.log and OUT/warm_N.log.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mirror-mouse-example"
FIRST_BATCH = re.compile(r"first batch predicted: \d+ frames, ([\d.]+) s after the process started")
ALL_WRITTEN = re.compile(r"all videos predicted and written: \d+ frames, ([\d.]+) s after the process started")
FIRST_STEP = re.compile(r"first training step done: ([\d.]+) s after the process started")
FIT_ENDED = re.compile(r"training ended after epoch \d+, ([\d.]+) s after the process started")
TRAINED = re.compile(r"training done and written: ([\d.]+) s after the process started")


def run(command: list[str], env: dict, what: str, log: Path) -> tuple[float, str]:
    """Wall seconds and stderr of a fresh process (also written to ``log``); stops the benchmark
    when it fails."""
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    log.write_text(out.stderr)
    if out.returncode != 0:
        sys.exit(f"{what} failed (exit status {out.returncode}):\n{out.stderr[-3000:]}")
    return wall, out.stderr


def benchmark_training(args, env: dict, model_dir: Path) -> dict:
    overrides = [f"data.data_dir={args.data.resolve()}", "data.video_dir=videos", f"training.max_epochs={args.epochs}", f"training.min_epochs={args.epochs}", *args.set]
    command = [sys.executable, str(ROOT / "scripts/train.py"), "--config", str(ROOT / "config/model.yaml"), "--model-dir", str(model_dir), *overrides]
    wall, log = run(command, env, "training", args.out / "train.log")
    marks = [pattern.search(log) for pattern in (FIRST_STEP, FIT_ENDED, TRAINED)]
    if not all(marks):
        sys.exit(f"training: no 'first training step done', 'training ended' or 'training done' line in its log:\n{log[-3000:]}")
    first_step, fit_ended, done = (float(mark.group(1)) for mark in marks)
    status = json.loads((model_dir / "train_status.json").read_text())
    figures = {
        "epochs": args.epochs, "wall_s": round(wall, 2), "steps_per_s": status.get("train_steps_per_s"), "wall_per_epoch_s": round(wall / args.epochs, 3),
        "start_s": first_step, "fit_s": round(fit_ended - first_step, 2), "end_s": round(done - fit_ended, 2), "exit_s": round(wall - done, 2),
    }
    print(f"train: {args.epochs} epochs: {wall:.1f} s wall ({wall / args.epochs:.2f} s per epoch), steady {figures['steps_per_s'] or 0:.1f} steps/s; "
          f"start to the first step {first_step:.2f} s, the epochs {figures['fit_s']:.2f} s, labeled predictions and files {figures['end_s']:.2f} s, exit {figures['exit_s']:.2f} s")
    return figures


def benchmark_prediction(args, env: dict, model_dir: Path, count: int) -> dict:
    videos = args.out / f"videos_{count}"
    shutil.rmtree(videos, ignore_errors=True)
    videos.mkdir()
    for i in range(count):  # one video under distinct names, as a job's chunk
        link = videos / f"video{i:03d}{args.video.suffix}"
        try:
            os.link(args.video, link)
        except OSError:  # another file system
            shutil.copyfile(args.video, link)
    paths = sorted(map(str, videos.iterdir()))
    report = args.out / f"report_{count}.json"
    common = ["--model-dir", str(model_dir), "--overwrite", *(["--batch-size", str(args.batch_size)] if args.batch_size else []), *(["--backend", args.backend] if args.backend else [])]
    command = [sys.executable, str(ROOT / "scripts/predict.py"), *common, "--output-dir", str(args.out / f"preds_{count}"), "--report", str(report), *paths]
    wall, log = run(command, env, f"prediction of {count} videos", args.out / f"predict_{count}.log")
    found, written = FIRST_BATCH.search(log), ALL_WRITTEN.search(log)
    if found is None or written is None:
        sys.exit(f"prediction of {count} videos: no 'first batch predicted' or 'all videos predicted' line in its log:\n{log[-3000:]}")
    fixed, done = float(found.group(1)), float(written.group(1))
    frames = sum(r["frames"] for r in json.loads(report.read_text())["videos"])
    warm_command = [sys.executable, __file__, "--warm-pass", str(model_dir), str(args.out / f"warm_{count}"), str(args.batch_size or ""), args.backend or "", *paths]
    _, warm_log = run(warm_command, env, f"warm prediction of {count} videos", args.out / f"warm_{count}.log")
    warm_fps = float(re.search(r"warm pass: ([\d.]+) frames/s", warm_log).group(1))
    backend = re.search(r"video backend: (\w+) \((.*)\)", log)
    first_pass_fps = frames / max(done - fixed, 1e-9)
    figures = {
        "videos": count, "frames": frames, "wall_s": round(wall, 2), "fixed_cost_s": fixed, "exit_s": round(wall - done, 2),
        "first_pass_fps": round(first_pass_fps, 1), "warm_fps": round(warm_fps, 1),
        "first_pass_over_warm": round(first_pass_fps / warm_fps, 3), "fixed_cost_over_wall": round(fixed / wall, 3),
        "backend": backend.group(1) if backend else None, "backend_reason": backend.group(2) if backend else None,
    }
    print(f"predict: {count} videos, {frames} frames ({figures['backend']}): {wall:.1f} s wall, fixed cost {fixed:.2f} s "
          f"({figures['fixed_cost_over_wall']:.2f} of wall), exit {figures['exit_s']:.2f} s, first pass {first_pass_fps:.0f} frames/s, warm {warm_fps:.0f} frames/s "
          f"(first pass / warm {figures['first_pass_over_warm']:.2f})")
    return figures


def warm_pass(model_dir: str, out: str, batch_size: str, backend: str, videos: list[str]) -> None:
    """In its own process: predict ``videos`` twice with one model load; print the second pass's rate."""
    from lightning_pose_lib.predict import default_device, load_model, predict_videos

    model = load_model(model_dir, default_device())
    jobs = [(v, Path(out) / f"{Path(v).stem}.csv", Path(out) / f"{Path(v).stem}.h5") for v in videos]
    batch_size = int(batch_size) if batch_size else model.cfg["dali"]["base"]["predict"]["sequence_length"]
    settings = {"batch_size": batch_size, "backend": backend or model.cfg["dali"]["backend"], "progress": False}
    predict_videos(model, jobs, **settings)
    start = time.perf_counter()
    results = predict_videos(model, jobs, **settings)
    seconds = time.perf_counter() - start
    print(f"warm pass: {sum(len(r.outcome) for r in results) / seconds:.1f} frames/s", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="work folder; the figures go to OUT/cold_start.json")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder (label CSV, videos/); default: %(default)s")
    parser.add_argument("--video", type=Path, default=None, help="the video copied for prediction (default: the first of DATA/videos)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--videos", type=int, nargs="+", default=[1, 8, 32], help="videos per prediction job, one job each")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per prediction batch (default: the model's dali.base.predict.sequence_length)")
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto", help="cpu: hide the GPUs from the processes")
    parser.add_argument("--backend", choices=["auto", "pyav", "dali"], default=None, help="prediction's video backend (default: the model's, auto)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override for training (repeatable)")
    parser.add_argument("--model-dir", type=Path, default=None, help="predict with this trained model and skip training")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.video is None:
        from lightning_pose_lib.video import list_videos

        args.video = Path(list_videos(args.data / "videos")[0])
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})}
    figures: dict = {"cpus": len(os.sched_getaffinity(0))}
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = args.out / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        figures["train"] = benchmark_training(args, env, model_dir)
    figures["predict"] = [benchmark_prediction(args, env, model_dir, count) for count in args.videos]
    (args.out / "cold_start.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out / 'cold_start.json'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--warm-pass":
        warm_pass(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        main()
