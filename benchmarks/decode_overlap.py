#!/usr/bin/env python
"""Does video decoding overlap with the network on the GPU, or do they take turns?

    python benchmarks/decode_overlap.py VIDEO [--copies 32] [--pipes 4 8 16] [--seconds 6] [--trace DIR]

In one run, on copies of VIDEO, with a random-initialised ResNet-50 heatmap model at 256 x 256
(speed does not depend on the weights):

- model alone: the network call prediction makes (``_Network``: bf16, CUDA graphs), back to back,
  at most two batches in flight;
- decode alone: N threads, each one ``stream_videos`` pass over its share of the copies (one DALI
  pipeline; or with ``--backend pyav`` one PyAV worker process), frames resized and normalised on
  the GPU on the thread's own stream, as prediction's decoder threads do, then dropped;
- both at once, independently, for the same time window;
- ``predict_videos`` end to end with N decoder threads.

``overlap`` = model rate together / alone + decode rate together / alone: 1.0 means the two take
turns on the GPU, 2.0 that they run side by side. ``--trace DIR`` also records one window of both
at once with the PyTorch profiler and prints, per CUDA stream, the kernels' busy time and the delay
from each launch call to the kernel's start (a decoder waiting behind the model shows as delay).
"""

import argparse
import collections
import contextlib
import gzip
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.transforms import to_model_input
from lightning_pose_lib.models.pose_model import PoseModel
from lightning_pose_lib.predict import _network, predict_videos
from lightning_pose_lib.streams import compute_stream
from lightning_pose_lib.video import stream_videos


class ModelLoop(threading.Thread):
    """The network on one batch of frames already on the GPU, over and over until stopped."""

    def __init__(self, model, batch):
        super().__init__(daemon=True)
        with compute_stream():  # captured here: a capture fails while other threads use the GPU
            self.network = _network(model, batch, "auto", False)
        self.frames = torch.rand(batch, 3, *model.input_hw, device=model.device).contiguous(memory_format=torch.channels_last)
        self.batch, self.done, self.stop = batch, 0, threading.Event()

    def run(self):
        in_flight = collections.deque()
        with torch.inference_mode(), compute_stream():
            while not self.stop.is_set():
                self.network([self.frames])
                event = torch.cuda.Event()
                event.record()
                in_flight.append(event)
                if len(in_flight) > 2:
                    in_flight.popleft().synchronize()
                    self.done += self.batch


class DecodeLoop(threading.Thread):
    """One decoder thread of prediction, whose frames are dropped once on the model's input size."""

    def __init__(self, files, batch, hw, backend):
        super().__init__(daemon=True)
        self.files, self.batch, self.hw, self.backend = files, batch, hw, backend
        self.done, self.stop = 0, threading.Event()

    def run(self):
        stream = torch.cuda.Stream(priority=-1)
        with torch.cuda.stream(stream):
            events = legacy_dali(self.files, self.batch) if self.backend == "dali-legacy" else stream_videos(self.files, self.batch, self.backend, "cuda")
            for kind, _, *payload in events:
                if kind == "batch":
                    to_model_input(payload[1], self.hw, "cuda")
                    self.done += len(payload[0])
                elif kind == "error":
                    raise payload[0]
                if self.stop.is_set():
                    break


def legacy_dali(files, length):
    """Batch events of DALI's older ``fn.readers.video`` (NvDecoder with its own decode thread)."""
    from nvidia.dali import fn, pipeline_def
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    @pipeline_def(batch_size=1, num_threads=2, device_id=0, seed=0, prefetch_queue_depth=2)
    def pipe():
        return fn.readers.video(device="gpu", filenames=files, sequence_length=length, step=length, pad_sequences=True, random_shuffle=False, name="reader", pad_last_batch=True)

    for batch in DALIGenericIterator(pipe(), ["frames"], reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=False):
        frames = batch[0]["frames"][0]
        yield "batch", 0, np.arange(len(frames)), frames


def start_decoders(files, count, batch, backend):
    """``count`` decoders (PyAV: worker processes) up before a window, by decoding a video each."""
    threads = [threading.Thread(target=lambda: list(stream_videos(files[:1], batch, backend, "cuda"))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def window(loops, seconds, warm_up=1.5, profile=None):
    """Frames/s of each loop over ``seconds`` after ``warm_up``, all running at once, and the CPU
    cores this process kept busy meanwhile."""
    for loop in loops:
        loop.start()
    time.sleep(warm_up + 0.1 * len(loops))  # pipelines build meanwhile
    with profile if profile is not None else contextlib.nullcontext():
        before, start, cpu = [loop.done for loop in loops], time.perf_counter(), time.process_time()
        time.sleep(seconds)
        after, end = [loop.done for loop in loops], time.perf_counter()
        cores = (time.process_time() - cpu) / (end - start)
    for loop in loops:
        loop.stop.set()
    for loop in loops:
        loop.join()
    torch.cuda.synchronize()
    return [(a - b) / (end - start) for a, b in zip(after, before)], cores


def summarise_trace(path: Path) -> None:
    """Per CUDA stream: kernels, busy time, and launch-to-start delay; the slowest runtime calls."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
        events = json.load(f)["traceEvents"]
    launches = {e["args"]["correlation"]: e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    streams = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "kernel":
            streams[e["args"].get("stream")].append(e)
    span = [min(e["ts"] for k in streams.values() for e in k), max(e["ts"] + e["dur"] for k in streams.values() for e in k)]
    print(f"trace: {(span[1] - span[0]) / 1e3:.0f} ms of kernels")
    for stream, kernels in sorted(streams.items(), key=lambda kv: -sum(e["dur"] for e in kv[1])):
        delays = [e["ts"] - launches[e["args"]["correlation"]]["ts"] for e in kernels if e["args"].get("correlation") in launches]
        names = collections.Counter(e["name"][:50] for e in kernels).most_common(2)
        busy = sum(e["dur"] for e in kernels) / (span[1] - span[0])
        delay = f"launch->start median {np.median(delays) / 1e3:.2f} ms, p90 {np.percentile(delays, 90) / 1e3:.2f} ms" if delays else "no launch records"
        print(f"  stream {stream}: {len(kernels)} kernels, busy {busy:.2f}, {delay}; {names}")
    calls = collections.defaultdict(lambda: [0, 0.0])
    for e in events:
        if e.get("cat") in ("cuda_runtime", "cuda_driver"):
            calls[f"{e['name']}@{e.get('tid')}"][0] += 1
            calls[f"{e['name']}@{e.get('tid')}"][1] += e.get("dur", 0)
    print("  runtime calls (name@thread) by total time: " + ", ".join(f"{n} x{c} {t / 1e3:.0f} ms" for n, (c, t) in sorted(calls.items(), key=lambda kv: -kv[1][1])[:12]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--copies", type=int, default=32)
    parser.add_argument("--pipes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--backend", default="dali", help="video backend of the decoder threads (dali, pyav; dali-legacy: DALI's older reader, decode only)")
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument("--switch-interval", type=float, nargs="+", default=[None], help="sys.setswitchinterval values to compare (seconds; default: the interpreter's)")
    parser.add_argument("--trace", type=Path, help="also record one window of both at once (with the first --pipes) here")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    cfg = load_config(overrides=["model.backbone=resnet50", "model.backbone_pretrained=false", "data.image_resize_dims.height=256", "data.image_resize_dims.width=256"])
    model = PoseModel(cfg, 17).eval().cuda().to(memory_format=torch.channels_last)
    tmp = Path(tempfile.mkdtemp())
    files = []
    for i in range(max(args.copies, 4 * max(args.pipes))):  # enough that no decoder runs dry in a window
        (tmp / f"c{i:03d}{args.video.suffix}").symlink_to(args.video.resolve())
        files.append(str(tmp / f"c{i:03d}{args.video.suffix}"))
    print("gpu:", torch.cuda.get_device_name(0), "cpus:", os.cpu_count(), "CUDA_DEVICE_MAX_CONNECTIONS:", os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS", "default"), flush=True)
    (model_alone,), _ = window([ModelLoop(model, args.batch)], args.seconds)
    print(f"model alone: {model_alone:.0f} frames/s", flush=True)
    hw = model.input_hw
    default_interval = sys.getswitchinterval()
    for interval in args.switch_interval:
        sys.setswitchinterval(interval or default_interval)
        print(f"switch interval {sys.getswitchinterval() * 1e3:.2f} ms", flush=True)
        for pipes in args.pipes:
            shares = [files[i::pipes] for i in range(pipes)]
            start_decoders(files, pipes, args.batch, args.backend)
            rates, alone_cores = window([DecodeLoop(s, args.batch, hw, args.backend) for s in shares], args.seconds)
            decode_alone = sum(rates)
            start_decoders(files, pipes, args.batch, args.backend)
            together, cores = window([ModelLoop(model, args.batch), *[DecodeLoop(s, args.batch, hw, args.backend) for s in shares]], args.seconds)
            model_rate, decode_rate = together[0], sum(together[1:])
            overlap = model_rate / model_alone + decode_rate / decode_alone
            line = f"{pipes:3d} decoders: decode alone {decode_alone:6.0f} ({alone_cores:.1f} CPU cores busy); together: model {model_rate:6.0f}, decode {decode_rate:6.0f}; overlap {overlap:.2f} ({cores:.1f} CPU cores busy)"
            if not args.no_end_to_end and args.backend != "dali-legacy":
                jobs = [(f, tmp / "preds" / f"{Path(f).stem}.csv", None) for f in files[: args.copies]]
                predict_videos(model, jobs[:pipes], args.batch, args.backend, progress=False, decoders=pipes)  # warm-up, decoders started
                torch.cuda.synchronize()
                start = time.perf_counter()
                results = predict_videos(model, jobs, args.batch, args.backend, progress=False, decoders=pipes)
                frames = sum(len(r.outcome) for r in results if not isinstance(r.outcome, Exception))
                rate = frames / (time.perf_counter() - start)
                line += f"; predict_videos {rate:6.0f} frames/s ({rate / model_alone:.2f} of model alone)"
            print(line, flush=True)
    if args.trace:
        from torch.profiler import ProfilerActivity, profile

        args.trace.mkdir(parents=True, exist_ok=True)
        shares = [files[i::args.pipes[0]] for i in range(args.pipes[0])]
        prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
        together, _ = window([ModelLoop(model, args.batch), *[DecodeLoop(s, args.batch, hw, args.backend) for s in shares]], 1.0, profile=prof)
        path = args.trace / "trace.json"
        prof.export_chrome_trace(str(path))
        print(f"traced window: model {together[0]:.0f}, decode {sum(together[1:]):.0f} frames/s")
        summarise_trace(path)
        with open(path, "rb") as src, gzip.open(str(path) + ".gz", "wb") as dst:
            dst.write(src.read())
        path.unlink()


if __name__ == "__main__":
    main()
