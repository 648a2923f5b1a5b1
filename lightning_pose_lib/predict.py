"""Prediction on labeled frames and on videos, written in the label layout in original pixels."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import checkpoints
from .data.transforms import rescale_points, to_model_input
from .errors import InputError
from .table_writers import table_writers
from .models.cuda_graphs import InferenceGraph
from .models.network import CONTEXT, PoseNetwork
from .progress import VideoProgress, since_process_start
from .status import STATUS_FILE, read_status
from .streams import compute_stream
from .video import available_cpus, prediction_backend, prepare_streams, stream_videos

if TYPE_CHECKING:
    import pandas as pd  # imported where tables are made: not on a prediction job's way to its first batch

log = logging.getLogger(__name__)

# Videos decoded at once by default: PyAV reached its best rate on the 16-core H200 machine with 6
# (docs/benchmarks.md).
DECODERS = 6


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu", allow_incomplete: bool = False) -> PoseNetwork:
    """The best checkpoint of a trained model folder, in eval mode on ``device``. A model whose
    training has not completed (``train_status.json``) is refused unless ``allow_incomplete``."""
    path = Path(model_dir) / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise InputError(path, "no trained model here (checkpoint missing; has training finished?)")
    if not allow_incomplete:
        _check_completed(Path(model_dir))
    device = torch.device(device)
    if device.type == "cuda":  # the CUDA context (0.35 s on the H200 machine) is made while the checkpoint is read
        threading.Thread(target=torch.empty, args=(0,), kwargs={"device": device}, daemon=True).start()
    model = checkpoints.load_pose_model(path, device).eval()
    if model.device.type == "cuda":  # tensor cores read NHWC without a transpose
        model = model.to(memory_format=torch.channels_last)
    return model


def _check_completed(model_dir: Path) -> None:
    status = read_status(model_dir)
    if status != "COMPLETED":
        raise InputError(model_dir / STATUS_FILE, f"training of this model has not completed (status {status}); to predict with its best checkpoint so far, ask for it (--allow-incomplete)")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def predict_labeled(model: PoseNetwork, dataset, batch_size: int = 32, precision: str = "fp32", decoded=()) -> pd.DataFrame:
    """Predictions for every labeled frame, with a trailing ``set`` column (train/validation/...).
    Several cameras: each view's frames predicted by the one network, the views side by side as in
    ``dataset.labels``. ``decoded``: for each view, frames already read (LabeledFrames), which
    are not read again."""
    from .data.labeled import LabeledFrames
    from .data.labels import pose_table

    model.eval()
    device = model.device
    keypoints, likelihood = [], []
    for view, labels in enumerate(dataset.view_labels):
        frames = LabeledFrames(labels, dataset.data_dir, model.input_hw, context=model.is_context, decoded=decoded[view] if decoded else ())
        for start in range(0, len(frames), batch_size):
            images = frames.images[start : start + batch_size].to(device).float().div_(255.0)
            with _autocast(model, precision):
                out = model(images)
            sizes = frames.orig_hw[start : start + batch_size, None]  # (B, 1, 2): each frame's own size
            keypoints.append(rescale_points(out["keypoints"].float().cpu(), model.input_hw, sizes).numpy())
            likelihood.append(out["likelihood"].float().cpu().numpy())
    views = len(dataset.view_labels)
    keypoints = np.concatenate(np.array_split(np.concatenate(keypoints), views), axis=1)  # views side by side
    likelihood = np.concatenate(np.array_split(np.concatenate(likelihood), views), axis=1)
    scorer = f"{model.model_type}_tracker"
    table = pose_table(keypoints, dataset.labels.keypoint_names, scorer, likelihood, dataset.labels.image_paths)
    table[("set", "", "")] = dataset.sets
    return table


def predict_video(
    model: PoseNetwork,
    video_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    h5_path: str | os.PathLike | None = None,
    batch_size: int = 96,
    backend: str = "auto",
    keypoint_names: list[str] | None = None,
    progress: bool = True,
    precision: str = "auto",
) -> pd.DataFrame:
    """Predict every frame of one video; write ``csv_path`` (and ``h5_path``) atomically.

    The context model sees frames t-2..t+2; at the first and last two frames of the video the
    missing neighbours are copies of the edge frame. Its two heads' own predictions are also
    written, to ``heads/<stem>_static.csv`` and ``heads/<stem>_context.csv`` beside ``csv_path``.
    """
    (result,) = predict_videos(model, [(video_path, csv_path, h5_path)], batch_size, backend, keypoint_names, progress, precision, decoders=1)
    if isinstance(result.outcome, Exception):
        raise result.outcome
    return result.outcome


@dataclass
class VideoResult:
    video: str
    outcome: pd.DataFrame | Exception  # the prediction table, or why the video failed
    seconds: float  # from the first decoded batch to the written files


def predict_videos(
    model: PoseNetwork,
    jobs: list[tuple],
    batch_size: int = 96,
    backend: str = "auto",
    keypoint_names: list[str] | None = None,
    progress: bool = True,
    precision: str = "auto",
    decoders: int | None = None,
    compile: bool = False,
) -> list[VideoResult]:
    """Predict many videos with one model; ``jobs`` are (video, csv, h5 or None) triples.

    The work is a pipeline in which nothing waits on the GPU:

    - ``decoders`` threads (default :func:`decoder_count`) each decode their share of the videos
      as one stream (one DALI pipeline for all of them, or PyAV), and resize and normalise the
      frames on the device, on their own CUDA stream, into a bounded queue;
    - this thread fills batches of exactly ``batch_size`` frames, taking pieces of several videos
      when one runs short, and runs the model (bf16 on a GPU when ``precision`` is auto or bf16;
      ``compile``: torch.compile the network). Keypoints are extracted and kept on the device, and
      copied back once per video, without blocking. At most :data:`IN_FLIGHT` batches are queued
      on the GPU ahead of it: each queued batch's decoded frames stay allocated until the GPU has
      read them, and a CPU decoder faster than the model would otherwise queue without limit;
    - a writer thread writes each video's files when its last frame is predicted.

    A video that fails (unreadable, truncated) is reported in its result; the others go on.
    ``progress``: each video's frames/s and time left, as log lines or, when stderr is a terminal,
    as a bar (:class:`~lightning_pose_lib.progress.VideoProgress`).
    """
    names = keypoint_names or model.keypoint_names or [f"kp{k}" for k in range(model.num_keypoints)]
    if model.is_context and batch_size <= 2 * CONTEXT:
        raise InputError(None, f"batch size {batch_size}: the context model needs more than {2 * CONTEXT} frames per batch (each piece carries {2 * CONTEXT} context frames)")
    backend, why = prediction_backend(backend)
    log.info("video backend: %s (%s)", backend, why)
    decoders = decoder_count(decoders, len(jobs), backend)
    if model.device.type == "cuda":
        # cuDNN's heuristic plans: tuning them (benchmark mode) cost each job 0.7-1.3 s of its start
        # and predicted no faster (ResNet-50, bf16, batch 96 on the H200: 10,430 vs 10,420 frames/s).
        torch.backends.cudnn.benchmark = False
    chunks: queue.Queue = queue.Queue(maxsize=2 * decoders + 2)
    writes: queue.Queue = queue.Queue()
    results: dict[int, VideoResult] = {}
    groups = [list(range(d, len(jobs), decoders)) for d in range(decoders)]
    table_writers().submit(int)  # starts the writer processes now, not when the first video is done
    prepare_streams([[jobs[j][0] for j in group] for group in groups], batch_size, backend, model.device)  # decoding starts while the network is captured
    with compute_stream():
        network = _network(model, batch_size, precision, compile)  # captured before the decoder threads use the GPU
    threads = [threading.Thread(target=_decode, args=(group, jobs, chunks, batch_size, backend, model, slot), daemon=True) for slot, group in enumerate(groups)]
    writer = threading.Thread(target=_write, args=(writes, results, names, f"{model.model_type}_tracker"), daemon=True)
    for thread in [*threads, writer]:
        thread.start()
    report = VideoProgress(len(jobs), enabled=progress)
    states: dict[int, _VideoState] = {}
    in_flight: collections.deque = collections.deque()  # an event after each batch queued on the GPU
    finished = 0
    first_batch = True

    def handle(event) -> None:
        nonlocal finished
        kind, job_id, *payload = event
        if kind == "done":  # a decoder thread ran out of videos
            finished += 1
        elif kind == "error":
            results[job_id] = VideoResult(str(jobs[job_id][0]), payload[0], 0.0)
            states.pop(job_id, None)
        elif kind == "start":
            states[job_id] = _VideoState(model, payload[0], jobs[job_id])
            report.start(job_id, Path(jobs[job_id][0]).name, payload[0].num_frames)
        elif kind == "batch":
            states[job_id].add(*payload)
        elif kind == "end":
            states[job_id].ended = True

    with torch.inference_mode(), compute_stream():
        while True:
            while finished < decoders and sum(s.waiting() for s in states.values()) < batch_size:
                handle(chunks.get())
            pieces, rows = [], 0
            for job_id, state in list(states.items()):  # oldest first (dicts keep insertion order)
                while rows < batch_size and (piece := state.take(batch_size - rows)) is not None:
                    pieces.append((job_id, state, *piece))
                    rows += sum(len(part) for part in piece[0])
            if pieces:
                if len(in_flight) == IN_FLIGHT:
                    in_flight.popleft().synchronize()
                outputs = network([p[2] for p in pieces])
                offset = 0
                for job_id, state, frames, first, count in pieces:
                    state.store(outputs, offset, first, count)
                    offset += count
                    report.update(job_id, count)
                if model.device.type == "cuda":
                    in_flight.append(torch.cuda.Event())
                    in_flight[-1].record()
                if first_batch:  # the job's fixed cost ends here (benchmarks/cold_start.py reads this line)
                    first_batch = False
                    if model.device.type == "cuda":
                        in_flight[-1].synchronize()
                    log.info("first batch predicted: %d frames, %s s after the process started", rows, since_process_start())
            for job_id in [j for j, s in states.items() if s.ended and s.waiting() == 0]:
                writes.put((job_id, states.pop(job_id).to_host()))
                report.done(job_id)
            if finished == decoders and not pieces:
                break
    for job_id, state in states.items():  # streams that stopped without their end: reported as truncated
        writes.put((job_id, state.to_host()))
    writes.put(None)
    writer.join()
    report.close()
    for i, (video, *_) in enumerate(jobs):
        results.setdefault(i, VideoResult(str(video), InputError(video, "the decoder returned no frames"), 0.0))
    frames = sum(len(r.outcome) for r in results.values() if not isinstance(r.outcome, Exception))
    # benchmarks/cold_start.py reads this line too: the pass ends here, before the process's exit
    log.info("all videos predicted and written: %d frames, %s s after the process started", frames, since_process_start())
    return [results[i] for i in range(len(jobs))]


def decoder_count(decoders: int | None, videos: int, backend: str) -> int:
    """Videos decoded at once: ``decoders``, or by default :data:`DECODERS`, for PyAV (whose
    decoder processes each keep a CPU busy) at most the CPUs of the job; never more than ``videos``.
    (2 CPUs, 8 videos: 6 PyAV decoders gave the first batch 2 s later than 2 did, and the same
    total time; docs/benchmarks.md.)"""
    if decoders is None:
        decoders = min(DECODERS, available_cpus()) if backend == "pyav" else DECODERS
    return max(1, min(decoders, videos))


IN_FLIGHT = 3  # batches queued on the GPU ahead of the one being prepared

_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _network(model: PoseNetwork, batch_size: int, precision: str, compile: bool) -> "_Network":
    """The model's :class:`_Network` for these settings, built and warmed up once per model."""
    networks = _NETWORKS.setdefault(model, {})
    key = (batch_size, precision, compile)
    if key not in networks:
        networks[key] = _Network(model, batch_size, precision, compile)
        networks[key].warm_up()
    return networks[key]


class _Network:
    """The model over a batch of frame runs, with the chosen precision. On a GPU every batch has
    one shape (padded to ``batch_size``), so the backbone and the heads are each captured once as a
    CUDA graph and replayed: one launch instead of hundreds, which keeps the GPU busy while the
    decoder threads hold the interpreter. ``compile``: torch.compile the backbone as well (also
    on one shape). On a CPU without compile, batches keep their own size: padding would be work."""

    def __init__(self, model: PoseNetwork, batch_size: int, precision: str, compile: bool):
        self.model, self.batch_size = model, batch_size
        self.autocast = _autocast(model, precision)
        self.features, self.heads = model.features, model.heads
        self.pad_to = batch_size if compile or model.device.type == "cuda" else None
        if compile:
            self.features = torch.compile(model.features, dynamic=False)
        if model.device.type == "cuda":
            self.features, self.heads = InferenceGraph(self.features), InferenceGraph(self.heads)

    def warm_up(self) -> None:
        """One batch of blank frames (channels-last, as decoded frames are): captures the graphs,
        compiles. Nothing to do for a network that runs eagerly on each batch's own size."""
        if self.pad_to is None:
            return
        hw = self.model.input_hw
        self([torch.zeros(self.batch_size, 3, *hw, device=self.model.device).contiguous(memory_format=torch.channels_last)])

    @torch.inference_mode()
    def __call__(self, runs: list) -> dict[str, torch.Tensor]:
        """``runs``: runs of consecutive frames, each a tensor or a list of tensors (its parts in
        order), at most ``batch_size`` frames in all."""
        runs = [run if isinstance(run, (list, tuple)) else [run] for run in runs]
        parts = [part for run in runs for part in run]
        lengths = [sum(len(part) for part in run) for run in runs]
        if isinstance(self.features, InferenceGraph) and self.features.graph is not None:  # captured:
            graph_input = self.features.input  # written straight into the graph's input, no copies
            offset = 0  # rows after the runs keep stale frames, whose outputs nobody reads
            for part in parts:
                graph_input[offset : offset + len(part)].copy_(part)
                offset += len(part)
            images = graph_input
        else:
            images = torch.cat(parts) if len(parts) > 1 else parts[0]
            if self.pad_to is not None and len(images) < self.pad_to:
                images = torch.cat([images, images.new_zeros(self.pad_to - len(images), *images.shape[1:])])
        with self.autocast:
            return self.model.sequence_heads(self.features(images), lengths, pad_to=self.pad_to, heads=self.heads)


def _autocast(model: PoseNetwork, precision: str):
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    on_gpu = model.device.type == "cuda"
    if precision == "bf16" or (precision == "auto" and on_gpu):
        # no weight-cast cache: it would outlive a CUDA graph capture
        return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=on_gpu, cache_enabled=False)
    return contextlib.nullcontext()


_DECODER_STREAMS: dict = {}


def _decoder_stream(device: torch.device, slot: int) -> torch.cuda.Stream:
    """Decoder thread ``slot``'s CUDA stream, the same one on every call: the caching allocator
    keeps freed memory for the stream that allocated it, so fresh streams would allocate afresh
    (cudaMalloc, under the allocator's lock, which stalls the model thread meanwhile)."""
    key = (device, slot)
    if key not in _DECODER_STREAMS:
        _DECODER_STREAMS[key] = torch.cuda.Stream(device, priority=-1)  # small copies jump the queue
    return _DECODER_STREAMS[key]


def _decode(group: list[int], jobs: list[tuple], chunks: queue.Queue, batch_size: int, backend: str, model: PoseNetwork, slot: int) -> None:
    """Decoder thread ``slot``: the videos of ``group`` as one stream, frames resized and normalised
    to the model input on the device (on this thread's own CUDA stream, so the model's work and
    this thread's copies never wait for each other)."""
    device = model.device
    stream = _decoder_stream(device, slot) if device.type == "cuda" else None
    unfinished = set(group)
    try:
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            for kind, position, *payload in stream_videos([jobs[j][0] for j in group], batch_size, backend, device):
                job_id = group[position]
                if kind == "batch":
                    indices, frames = payload
                    images = to_model_input(frames, model.input_hw, device)
                    ready = None
                    if stream is not None:
                        ready = torch.cuda.Event()
                        ready.record(stream)
                    payload = [indices, images, ready]
                elif kind in ("end", "error"):
                    unfinished.discard(job_id)
                chunks.put((kind, job_id, *payload))
    except Exception as err:  # the stream itself broke: every video not yet finished fails
        for job_id in sorted(unfinished):
            chunks.put(("error", job_id, err if isinstance(err, InputError) else InputError(jobs[job_id][0], f"cannot predict: {err}")))
    chunks.put(("done", None))


class _VideoState:
    """One video in flight: frames waiting for the model, and keypoints kept on the device.

    For the context model every predicted frame needs two neighbours on each side: the first and
    last frames stand in for the missing ones at the ends, and each piece handed to the model keeps
    the four frames around its cut for the next piece.
    """

    def __init__(self, model: PoseNetwork, info, job):
        self.model, self.info, self.job = model, info, job
        self.fields = ("", "static_", "context_") if model.is_context else ("",)
        self.margin = 2 * CONTEXT if model.is_context else 0
        n, k, device = info.num_frames, model.num_keypoints, model.device
        self.keypoints = {f: torch.full((n, k, 2), float("nan"), device=device) for f in self.fields}
        self.likelihood = {f: torch.zeros((n, k), device=device) for f in self.fields}
        self.frames: list[torch.Tensor] = []  # model inputs not yet predicted (plus context), as decoded
        self.rows = 0  # frames held in self.frames
        self.received = 0  # frames decoded so far
        self.predicted = 0  # frames 0..predicted-1 have keypoints
        self.ended = False
        self.error: Exception | None = None
        self.started = time.perf_counter()

    def add(self, indices: np.ndarray, images: torch.Tensor, ready) -> None:
        if ready is not None:  # decoded on another CUDA stream
            torch.cuda.current_stream().wait_event(ready)
            images.record_stream(torch.cuda.current_stream())
        if len(indices) == 0 or indices[0] != self.received or indices[-1] != self.received + len(indices) - 1:
            self.error = self.error or InputError(self.job[0], f"decoder returned frames {indices[:1]}.. where frame {self.received} was next")
            return
        if self.margin and self.received == 0:  # the first frame stands in for frames -2 and -1
            self._hold(images[:1].expand(CONTEXT, -1, -1, -1))
        self._hold(images)
        self.received += len(indices)
        if self.margin and self.received == self.info.num_frames:  # the last frame stands in for the next two
            self._hold(images[-1:].expand(CONTEXT, -1, -1, -1))

    def _hold(self, images: torch.Tensor) -> None:
        self.frames.append(images)
        self.rows += len(images)

    def waiting(self) -> int:
        """Model input rows ready to go (0 while the context model still needs more frames)."""
        n = 0 if self.error else self.rows
        return n if n > self.margin else 0

    def take(self, rows: int):
        """The next piece of at most ``rows`` model inputs: (its parts, first frame, frames
        predicted). The parts are views of the decoded batches: nothing is copied until the
        network's input is filled."""
        count = min(self.waiting() - self.margin, rows - self.margin)
        if count <= 0:
            return None
        parts, needed = [], count + self.margin
        for images in self.frames:
            parts.append(images[:needed])
            needed -= len(parts[-1])
            if needed == 0:
                break
        dropped = count  # the margin rows stay for the next piece
        while dropped:
            head = self.frames[0]
            if len(head) <= dropped:
                self.frames.pop(0)
                dropped -= len(head)
            else:
                self.frames[0] = head[dropped:]
                dropped = 0
        self.rows -= count
        first = self.predicted
        self.predicted += count
        return parts, first, count

    def store(self, outputs: dict, offset: int, first: int, count: int) -> None:
        size = (self.info.height, self.info.width)
        for f in self.fields:
            points = outputs[f"{f}keypoints"][offset : offset + count].float()
            self.keypoints[f][first : first + count] = rescale_points(points, self.model.input_hw, size)
            self.likelihood[f][first : first + count] = outputs[f"{f}likelihood"][offset : offset + count].float()

    def to_host(self) -> "_VideoState":
        """Start copying the keypoints back without waiting; the writer waits for ``copied``."""
        self.frames, self.rows = [], 0
        self.copied = None
        if self.model.device.type == "cuda":
            for table in (self.keypoints, self.likelihood):
                for f, values in table.items():
                    table[f] = torch.empty(values.shape, dtype=values.dtype, pin_memory=True).copy_(values, non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record()
        return self


def _write(writes: queue.Queue, results: dict, names: list[str], scorer: str) -> None:
    """Writer thread: a finished video's tables, built here and written by the table writer
    processes (:mod:`lightning_pose_lib.table_writers`), off the model's critical path. pandas is
    imported here, while the first batches are predicted, not before them (0.2 s on 2 cores)."""
    from .data.labels import pose_table, write_pose_tables

    written: dict[int, tuple] = {}  # job -> (video, csv, table, future, start)
    finished: dict[int, float] = {}  # job -> seconds until its files were written (set by the future)
    while (item := writes.get()) is not None:
        job_id, state = item
        video, csv_path, h5_path = (*state.job, None)[:3]
        try:
            if state.copied is not None:
                state.copied.synchronize()
            if state.error:
                raise state.error
            if state.predicted != state.info.num_frames:
                raise InputError(video, f"decoded {state.received} of {state.info.num_frames} frames; the file may be truncated")
            keypoints = {f: v.numpy() for f, v in state.keypoints.items()}
            likelihood = {f: v.numpy() for f, v in state.likelihood.items()}
            table = pose_table(keypoints[""], names, scorer, likelihood[""])
            tables = [
                (pose_table(keypoints[f], names, scorer, likelihood[f]), Path(csv_path).parent / "heads" / f"{Path(csv_path).stem}_{f.rstrip('_')}.csv", None)
                for f in state.fields[1:]
            ]
            tables.append((table, csv_path, h5_path))  # last: its presence means the video is done
            future = table_writers().submit(write_pose_tables, tables)
            future.add_done_callback(lambda _, job_id=job_id, started=state.started: finished.setdefault(job_id, time.perf_counter() - started))
            written[job_id] = (video, csv_path, table, future, state.started)
        except Exception as err:
            results[job_id] = VideoResult(str(video), _write_error(err, csv_path), 0.0)
    for job_id, (video, csv_path, table, future, started) in written.items():
        try:
            future.result()
            results[job_id] = VideoResult(str(video), table, finished.get(job_id, time.perf_counter() - started))
        except Exception as err:
            results[job_id] = VideoResult(str(video), _write_error(err, csv_path), 0.0)


def _write_error(err: Exception, path) -> InputError:
    return err if isinstance(err, InputError) else InputError(path, f"cannot write: {err}")
