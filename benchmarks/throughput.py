#!/usr/bin/env python
"""Prediction and training throughput against the model's own ceiling, measured in one run.

    python scripts/benchmark.py throughput --data DATASET_DIR --out OUT [--copies 32] [--backbone resnet50]
        [--size 256] [--batch 128] [--decoders 4] [--context] [--compile] [--train-epochs 100]
        [--backend auto [pyav dali ...]]

On whatever device it finds (a GPU when there is one), with a model trained on DATASET_DIR (a label
CSV + videos/, e.g. the mirror-mouse example) so that its heatmaps are real:

(a) model-only frames/s: the network call prediction makes (forward + keypoint extraction, bf16 on
    a GPU) on frames already on the device, batches queued back to back;
(b) end-to-end prediction frames/s over ``--copies`` copies of the dataset's first video (decode,
    resize, normalise, forward, keypoints, CSV + H5 writing) with ``predict_videos``, and a plain
    one-video-at-a-time loop (decode a batch, then forward, same precision) as baseline; also
    the same pipeline on frames decoded beforehand (what decoding costs on top); with several
    ``--backend`` values, end-to-end once with each (the first serves every other figure);
(c) training steps/s of a semi-supervised model (temporal loss) with its real data loading
    (labeled batches + unlabeled clips) and with the same batch as tensors already on the device,
    the loaders alone, the host round trips per step and how busy the GPU is in a step;
plus pixel error on every labeled frame in fp32 and bf16, the bf16-vs-fp32 keypoint distance on a
video, and peak GPU memory of prediction and training. Prints ratios (b)/(a), (b)/(baseline),
(c real)/(c synthetic) with the GPU and software versions, and writes all to OUT/throughput.json.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import lightning_pose_lib
from lightning_pose_lib.io import write_text_atomic
from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.labeled import LabeledFrames
from lightning_pose_lib.data.transforms import rescale_points, to_model_input
from lightning_pose_lib.video import list_videos
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.metrics import pixel_error
from lightning_pose_lib.predict import _Network, _autocast, default_device, load_model, predict_labeled, predict_videos
from lightning_pose_lib.provenance import library_versions
from lightning_pose_lib.status import is_complete
from lightning_pose_lib.train import _fit_pcas, _train_loader, train
from lightning_pose_lib.models.pose_model import PoseModel
from lightning_pose_lib import video as video_lib
from lightning_pose_lib.streams import compute_stream
from lightning_pose_lib.video import VideoInfo, VideoReader, choose_backend, open_video


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def model_only(model, batch, repeats=30, compile=False):
    """Frames/s of the network alone on frames already on the device, keypoints included: the
    same call prediction makes (precision, torch.compile), queued back to back and synchronised
    once, so this is the GPU's own ceiling. The context model runs over sequences of the batch
    size (its outputs are 4 frames fewer), as in prediction."""
    network = _Network(model, batch, "auto", compile)
    frames = torch.rand(batch, 3, *model.input_hw, device=model.device)
    outputs = batch - (4 if model.is_context else 0)
    for _ in range(3):
        network([frames])
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        network([frames])
    sync()
    return outputs * repeats / (time.perf_counter() - start)


def plain_loop(model, videos, batch, backend):
    """Baseline: one video at a time, decode a batch then run the model on it and copy the
    keypoints back, in the same precision as the pipeline (the context model over each batch as
    a sequence, whose outputs are 4 frames fewer; the baseline does not bother with overlaps)."""
    start = time.perf_counter()
    frames_done = 0
    for video in videos:
        with open_video(video, backend=backend, device=model.device) as reader, torch.inference_mode(), _autocast(model, "auto"):
            for indices, frames in reader.iter_batches(batch):
                if model.is_context and len(indices) <= 4:  # a tail too short for any output
                    continue
                out = model.forward_sequence(to_model_input(frames, model.input_hw, model.device))
                rescale_points(out["keypoints"].float(), model.input_hw, (reader.info.height, reader.info.width)).cpu()
                frames_done += len(out["keypoints"])
    sync()
    return frames_done / (time.perf_counter() - start)


def labeled_pixel_error(model, dataset, precision):
    """Mean pixel error (original pixels) over every labeled keypoint of every labeled frame."""
    error = pixel_error(predict_labeled(model, dataset, precision=precision), dataset.labels)
    return float(np.nanmean(error[dataset.labels.keypoint_names].to_numpy()))


class DecodedFrames(VideoReader):
    """A 'backend' replaying frames already decoded on the device: prediction's whole pipeline
    (queues, resizing, batching, model, copies back, writing) without the decoding."""

    frames: torch.Tensor  # (N, H, W, 3) uint8, set by the benchmark

    def __init__(self, path, device=None):
        n, height, width, _ = self.frames.shape
        self.info = VideoInfo(str(path), n, 30.0, height, width, "decoded")

    def iter_batches(self, batch_size):
        for start in range(0, self.info.num_frames, batch_size):
            yield np.arange(start, min(start + batch_size, self.info.num_frames)), self.frames[start : start + batch_size]

    def read_frames(self, indices):
        return self.frames[torch.as_tensor(indices)]


def training_setup(cfg):
    """What a training step needs, as train() makes it but without Lightning: the model on the
    device (unsupervised losses at full weight), ``step(batch)`` (forward, backward and optimizer
    step, in the config's precision), an endless stream of real batches on the device, and its
    first batch."""
    dataset = load_dataset(cfg)
    size_hw = (cfg["data"]["image_resize_dims"]["height"], cfg["data"]["image_resize_dims"]["width"])
    train_set = LabeledFrames(dataset.labels, dataset.data_dir, size_hw, dataset.rows("train"), context=cfg["model"]["do_context"])
    device = default_device()
    model = PoseModel(cfg, dataset.labels.num_keypoints)
    model.use_unsupervised_losses(_fit_pcas(cfg, dataset, None))
    model.to(device)
    model.log = lambda *a, **k: None
    model.unsupervised_importance = lambda: 1.0  # no trainer here: use the losses at full weight
    optimizer = model.configure_optimizers()["optimizer"]  # what training uses (fused Adam on a GPU)
    precision = cfg["training"]["precision"]
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and precision == "bf16-mixed")

    def step(batch):
        with amp:
            loss = model.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def to_device(batch):
        if isinstance(batch, dict):
            return {k: to_device(v) for k, v in batch.items()}
        return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch

    loader = _train_loader(cfg, dataset, train_set, size_hw)

    def batches():  # endless, as the epochs of training
        while True:
            for item in loader:
                yield to_device(item[0] if isinstance(item, (list, tuple)) else item)

    stream = batches()
    return model, step, stream, next(stream)


def training_rates(cfg, steps=30):
    """Training steps/s with the real loaders and with the first batch again and again (synthetic:
    tensors already on the device); the loaders alone (batches/s, nothing trained); host round
    trips (CUDA synchronisations) per step; and the fraction of a synthetic step the GPU is busy
    (kernel time per step over wall time per step), which tells whether the step is bound by the
    GPU (near 1) or by the CPU queuing its work (benchmarks/train_step.py says where it goes)."""
    model, step, stream, batch0 = training_setup(cfg)
    device = model.device

    def rate(run, count):
        sync()
        start = time.perf_counter()
        for _ in range(count):
            run()
        sync()
        return count / (time.perf_counter() - start)

    for _ in range(3):
        step(batch0)
    out = {
        "real": rate(lambda: step(next(stream)), steps),
        "synthetic": rate(lambda: step(batch0), steps),
        "loaders_alone": rate(lambda: next(stream), steps),
    }
    if device.type == "cuda":
        import warnings

        for name, run in (("real", lambda: step(next(stream))), ("synthetic", lambda: step(batch0))):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    for _ in range(5):
                        run()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            syncs = [w for w in caught if "synchroniz" in str(w.message)]
            out[f"syncs_per_step_{name}"] = len(syncs) / 5
            out[f"sync_sites_{name}"] = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs})[:12]
        out["gpu_busy_synthetic"] = gpu_busy(lambda: step(batch0), 1 / out["synthetic"])
    return out


def gpu_busy(run, seconds_per_call: float, calls: int = 10) -> float:
    """The fraction of ``seconds_per_call`` (wall time of one ``run()``, measured unprofiled) that
    the GPU spends in kernels, from the PyTorch profiler over ``calls`` calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            run()
        sync()
    return sum(e.self_device_time_total for e in prof.key_averages()) / 1e6 / calls / seconds_per_call


class NetworkCalls:
    """Times every call of prediction's network while in use: when the first batch reached the
    model (start-up: decoder hand-over, first decode) and when the last left it (after it: the last
    copies back and the files written), and the frames/s in between (the pipeline's steady state)."""

    def __enter__(self):
        self.calls, original = [], _Network.__call__

        def timed(network, runs):
            began = time.perf_counter()
            out = original(network, runs)
            self.calls.append((began, time.perf_counter()))
            return out

        self.original, _Network.__call__ = original, timed
        return self

    def __exit__(self, *exc):
        _Network.__call__ = self.original

    def summary(self, start: float, end: float, frames: int) -> dict:
        if not self.calls:
            return {}
        first, last = self.calls[0][0], self.calls[-1][1]
        per_call = frames / len(self.calls)  # the batches are full but for a few
        return {
            "batches": len(self.calls),
            "until_first_batch_s": first - start,
            "after_last_batch_s": end - last,
            "steady_fps": per_call * (len(self.calls) - 1) / max(self.calls[-1][0] - first, 1e-9),
            "model_thread_in_network_fraction": sum(b - a for a, b in self.calls) / (end - start),
        }


class CpuUse:
    """Cores busy on the whole machine (all processes) since it was made, from /proc/stat."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return None
        return fields[3] + fields[4], sum(fields), time.perf_counter()  # idle + iowait, all, when

    def busy(self) -> float | None:
        end = self._read()
        if end is None or self.start is None:
            return None
        idle, total, seconds = (b - a for a, b in zip(self.start, end))
        ticks = os.sysconf("SC_CLK_TCK")
        return (total - idle) / ticks / seconds


def py_spy(prefix: Path, seconds: float) -> list:
    """py-spy recordings of this process for ``seconds``, started now (nothing if py-spy is not
    installed): every thread's stacks, idle ones included, and only the thread holding the GIL."""
    exe = shutil.which("py-spy")
    if exe is None:
        print("--spy: py-spy not found")
        return []
    common = [exe, "record", "--pid", str(os.getpid()), "--duration", str(int(max(1, seconds))), "--rate", "250", "--nonblocking", "--format", "raw"]
    return [
        subprocess.Popen([*common, "--threads", "--idle", "-o", f"{prefix}_threads.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([*common, "--gil", "-o", f"{prefix}_gil.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]


def versions():
    return {"lightning_pose_lib": lightning_pose_lib.__version__, "python": platform.python_version(), "cuda": torch.version.cuda, "torch": torch.__version__, **library_versions()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: CollectedData.csv, labeled-data/, videos/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=32)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--decoders", type=int, default=6)
    parser.add_argument("--context", action="store_true", help="the heatmap_mhcrnn context model")
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    parser.add_argument("--train-epochs", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=40, help="steps timed for the training rates")
    parser.add_argument("--backend", nargs="+", default=["auto"], help="decoding backends; end-to-end is measured with each, the first is used for everything else")
    parser.add_argument("--spy", type=float, default=0, metavar="SECONDS", help="record this process's threads with py-spy (when installed) for SECONDS of each timed prediction run (OUT/spy_*.txt)")
    parser.add_argument("--profile", action="store_true", help="print where the pipeline without decoding spends its time (PyTorch profiler; trace in OUT)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = default_device()
    on_gpu = device.type == "cuda"
    epochs = args.train_epochs
    overrides = [
        f"data.data_dir={args.data.resolve()}", "data.video_dir=videos", f"model.backbone={args.backbone}", "model.backbone_pretrained=false",
        f"data.image_resize_dims.height={args.size}", f"data.image_resize_dims.width={args.size}",
        f"training.max_epochs={epochs}", f"training.min_epochs={epochs}", "training.unfreezing_epoch=0",
        f"training.lr_scheduler_params.multisteplr.milestones=[{max(1, int(epochs * 0.6))},{max(1, int(epochs * 0.8))}]",
        "training.check_val_every_n_epoch=5", "training.train_prob=0.8", "training.val_prob=0.1",
        f"training.precision={'bf16-mixed' if on_gpu else '32-true'}",
    ]
    if args.context:
        overrides += ["model.model_type=heatmap_mhcrnn", "model.do_context=true"]
    cfg = load_config(overrides=overrides)
    model_dir = args.out / ("context" if args.context else "model")
    started = time.perf_counter()
    train(cfg, model_dir)  # resumes a cut-short run of this config, starts over for another, a no-op when done
    assert is_complete(model_dir), f"training of {model_dir} did not complete"
    model = load_model(model_dir, device)
    results = {
        "device": torch.cuda.get_device_name(0) if on_gpu else platform.processor() or "cpu",
        "versions": versions(),
        "model": f"{'heatmap_mhcrnn' if args.context else 'heatmap'} {args.backbone} {args.size}x{args.size}, batch {args.batch}",
        "backend": choose_backend(args.backend[0]),
        "decoders": args.decoders,
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    # Training first, in a process not yet holding prediction's tables and workers: a step is bound
    # by the CPU, so whatever else the process carries shows in its rate.
    semi = load_config(overrides=overrides + ["model.losses_to_use=[temporal]"])
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    with compute_stream():  # as train() runs its steps
        rates = training_rates(semi, args.train_steps)
    results["train_steps_per_s_real"], results["train_steps_per_s_synthetic"] = rates.pop("real"), rates.pop("synthetic")
    results["train_loaders_alone_batches_per_s"] = rates.pop("loaders_alone")
    results.update({f"train_{key}": value for key, value in rates.items()})
    if on_gpu:
        results["train_peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9

    results["model_only_fps"] = model_only(model, args.batch)

    video = sorted(list_videos(args.data / "videos"))[0]
    copies_dir = args.out / "copies"
    copies_dir.mkdir(exist_ok=True)
    videos = []
    for i in range(args.copies):
        copy = copies_dir / f"copy{i:03d}{Path(video).suffix}"
        if not copy.exists():
            copy.symlink_to(Path(video).resolve())
        videos.append(copy)
    jobs = [(v, args.out / "preds" / f"{v.stem}.csv", args.out / "preds" / f"{v.stem}.h5") for v in videos]

    def end_to_end(backend=args.backend[0], name=None, **kwargs):
        """Frames/s, the results, and the peak GPU memory (GB) of set-up (warm-up included) and
        of the timed run alone. ``name``: also keep the run's timeline and CPU use in results."""
        peak = lambda: torch.cuda.max_memory_allocated() / 1e9 if on_gpu else 0.0  # noqa: E731
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        predict_videos(model, jobs[: args.decoders], args.batch, backend, progress=False, decoders=args.decoders, **kwargs)  # warm-up (and decoder processes started)
        sync()
        setup_peak = peak()
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        spies = py_spy(args.out / f"spy_{name}", args.spy) if name and args.spy else []
        cores = CpuUse()
        with NetworkCalls() as calls:
            start = time.perf_counter()
            outcome = predict_videos(model, jobs, args.batch, backend, progress=False, decoders=args.decoders, **kwargs)
            sync()
            seconds = time.perf_counter() - start
        for spy in spies:
            spy.wait()
        failed = [r.outcome for r in outcome if isinstance(r.outcome, Exception)]
        assert not failed, failed
        frames = sum(len(r.outcome) for r in outcome)
        if name:
            results[f"timeline_{name}"] = {**calls.summary(start, start + seconds, frames), "cpu_cores_busy": cores.busy()}
        return frames / seconds, outcome, (setup_peak, peak())

    # Memory is that of this first run: cuDNN's autotuning in the warm-up may try large workspaces.
    results["end_to_end_fps"], outcome, (results["predict_setup_peak_gpu_memory_gb"], results["predict_peak_gpu_memory_gb"]) = end_to_end(name="end_to_end")
    results["end_to_end_fps_by_backend"] = {results["backend"]: results["end_to_end_fps"]}
    for other in args.backend[1:]:
        results["end_to_end_fps_by_backend"][choose_backend(other)] = end_to_end(other)[0]
    with open_video(videos[0], backend=args.backend[0], device=device) as reader:  # the same frames, decoded beforehand
        DecodedFrames.frames = torch.cat([torch.as_tensor(f).to(device) for _, f in reader.iter_batches(256)])
    video_lib.BACKENDS["decoded"] = DecodedFrames
    if args.profile:  # where the pipeline's time goes, decoding aside
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            end_to_end(backend="decoded")
        for key in ("self_cpu_time_total", "self_device_time_total"):
            print(prof.key_averages().table(sort_by=key, row_limit=20, max_name_column_width=60))
        trace = args.out / "trace_without_decoding.json"
        prof.export_chrome_trace(str(trace))
        with open(trace, "rb") as src, gzip.open(f"{trace}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        trace.unlink()
        print(f"trace: {trace}.gz")
    results["end_to_end_fps_without_decoding"] = end_to_end(backend="decoded", name="without_decoding")[0]
    del DecodedFrames.frames
    results["plain_loop_fps"] = plain_loop(model, videos[: max(2, args.copies // 8)], args.batch, args.backend[0])

    # bf16 against fp32: keypoints of one video, and the pixel error on every labeled frame
    fp32 = predict_videos(model, jobs[:1], args.batch, args.backend[0], progress=False, precision="fp32", decoders=1)[0].outcome
    bf16 = outcome[0].outcome
    xy = lambda table: table.to_numpy().reshape(len(table), -1, 3)[..., :2]  # noqa: E731
    distance = np.linalg.norm(xy(fp32) - xy(bf16), axis=-1)
    results["bf16_vs_fp32_keypoint_px"] = {"median": float(np.median(distance)), "p99": float(np.percentile(distance, 99)), "max": float(distance.max())}
    dataset = load_dataset(cfg)
    results["labeled_pixel_error_fp32"] = labeled_pixel_error(model, dataset, "fp32")
    results["labeled_pixel_error_bf16"] = labeled_pixel_error(model, dataset, "bf16")
    results["labeled_pixel_error_change_bf16"] = results["labeled_pixel_error_bf16"] - results["labeled_pixel_error_fp32"]

    if args.compile:  # last: a compiler failure must not cost the figures above
        try:
            results["model_only_fps_compiled"] = model_only(model, args.batch, compile=True)
            results["end_to_end_fps_compiled"] = end_to_end(compile=True)[0]
        except Exception as err:
            results["compile_error"] = f"{type(err).__name__}: {err}"[:500]

    results["ratio_end_to_end_over_model_only"] = results["end_to_end_fps"] / results["model_only_fps"]
    results["ratio_without_decoding_over_model_only"] = results["end_to_end_fps_without_decoding"] / results["model_only_fps"]
    results["ratio_end_to_end_over_plain_loop"] = results["end_to_end_fps"] / results["plain_loop_fps"]
    results["ratio_train_real_over_synthetic"] = results["train_steps_per_s_real"] / results["train_steps_per_s_synthetic"]
    write_text_atomic(args.out / "throughput.json", json.dumps(results, indent=2) + "\n")
    shutil.rmtree(args.out / "preds", ignore_errors=True)
    for key, value in results.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
