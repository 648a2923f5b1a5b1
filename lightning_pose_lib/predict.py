"""Prediction on labeled frames and on videos, written in the label layout in original pixels."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .data.labels import pose_table, write_pose_table
from .data.transforms import rescale_points, to_model_input
from .errors import InputError
from .models.pose_model import CONTEXT, PoseModel
from .video import open_video


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> PoseModel:
    """The best checkpoint of a trained model folder, in eval mode on ``device``."""
    path = Path(model_dir) / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise InputError(path, "no trained model here (checkpoint missing; has training finished?)")
    model = PoseModel.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    return model.eval().to(device)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def _predict_batch(model: PoseModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(images)
    return out["keypoints"].float(), out["likelihood"].float()


def predict_labeled(model: PoseModel, dataset, batch_size: int = 32) -> pd.DataFrame:
    """Predictions for every labeled frame, with a trailing ``set`` column (train/validation/...)."""
    from .data.labeled import LabeledFrames

    model.eval()
    device = model.device
    frames = LabeledFrames(dataset.labels, dataset.data_dir, model.input_hw, context=model.is_context)
    keypoints, likelihood = [], []
    for start in range(0, len(frames), batch_size):
        images = frames.images[start : start + batch_size].to(device).float().div_(255.0)
        points, conf = _predict_batch(model, images)
        for p, hw in zip(points.cpu(), frames.orig_hw[start : start + batch_size]):
            keypoints.append(rescale_points(p, model.input_hw, tuple(hw.tolist())).numpy())
        likelihood.append(conf.cpu().numpy())
    scorer = f"{model.model_type}_tracker"
    table = pose_table(np.stack(keypoints), dataset.labels.keypoint_names, scorer, np.concatenate(likelihood), dataset.labels.image_paths)
    table[("set", "", "")] = dataset.sets
    return table


def predict_video(
    model: PoseModel,
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
    model: PoseModel,
    jobs: list[tuple],
    batch_size: int = 96,
    backend: str = "auto",
    keypoint_names: list[str] | None = None,
    progress: bool = True,
    precision: str = "auto",
    decoders: int = 4,
) -> list[VideoResult]:
    """Predict many videos with one model; ``jobs`` are (video, csv, h5 or None) triples.

    ``decoders`` threads decode videos concurrently (the decoders release the GIL) into a bounded
    queue, so the model never waits for one video's decoder; this thread runs the model (bf16 on
    a GPU when ``precision`` is auto or bf16; keypoints are extracted on the device); a writer
    thread writes each video's files as soon as its last frame is predicted. A video that fails
    (unreadable, truncated) is reported in its result and does not stop the others.
    """
    names = keypoint_names or model.hparams.get("keypoint_names") or [f"kp{k}" for k in range(model.num_keypoints)]
    work: queue.Queue = queue.Queue()
    for job_id, job in enumerate(jobs):
        work.put((job_id, job))
    batches: queue.Queue = queue.Queue(maxsize=2 * max(1, decoders))
    writes: queue.Queue = queue.Queue()
    results: dict[int, VideoResult] = {}
    decoders = max(1, min(decoders, len(jobs)))
    threads = [threading.Thread(target=_decode, args=(work, batches, batch_size, backend), daemon=True) for _ in range(decoders)]
    writer = threading.Thread(target=_write, args=(writes, results, names, f"{model.model_type}_tracker"), daemon=True)
    for thread in [*threads, writer]:
        thread.start()
    states: dict[int, _VideoState] = {}
    bar = tqdm(desc="frames", unit="frame", disable=not progress, file=sys.stderr)
    finished = 0
    autocast = _autocast(model, precision)
    while finished < decoders:
        kind, job_id, *payload = batches.get()
        if kind == "done":  # a decoder thread ran out of videos
            finished += 1
        elif kind == "error":
            results[job_id] = VideoResult(str(jobs[job_id][0]), payload[0], 0.0)
            states.pop(job_id, None)
        elif kind == "start":
            states[job_id] = _VideoState(model, payload[0], jobs[job_id])
        elif kind == "batch":
            indices, frames = payload
            with torch.inference_mode(), autocast:
                states[job_id].push(indices, to_model_input(frames, model.input_hw, model.device))
            bar.update(len(indices))
        elif kind == "end":
            writes.put((job_id, states.pop(job_id)))
    writes.put(None)
    writer.join()
    bar.close()
    return [results[i] for i in range(len(jobs))]


def _autocast(model: PoseModel, precision: str):
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    on_gpu = model.device.type == "cuda"
    if precision == "bf16" or (precision == "auto" and on_gpu):
        return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=on_gpu)
    return contextlib.nullcontext()


def _decode(work: queue.Queue, batches: queue.Queue, batch_size: int, backend: str) -> None:
    """Decoder thread: whole videos, one at a time, batch by batch, in frame order."""
    while True:
        try:
            job_id, (video, *_) = work.get_nowait()
        except queue.Empty:
            batches.put(("done", None))
            return
        try:
            with open_video(video, backend=backend) as reader:  # opening validates the video
                batches.put(("start", job_id, reader.info))
                for indices, frames in reader.iter_batches(batch_size):
                    batches.put(("batch", job_id, indices, frames))
            batches.put(("end", job_id))
        except Exception as err:  # reported per video; the other videos go on
            batches.put(("error", job_id, err if isinstance(err, InputError) else InputError(video, f"cannot predict: {err}")))


class _VideoState:
    """Predictions of one video as they arrive; for the context model, consecutive batches overlap
    by four frames so every frame has its neighbours."""

    def __init__(self, model: PoseModel, info, job):
        self.model, self.info, self.job = model, info, job
        self.fields = ("", "static_", "context_") if model.is_context else ("",)
        n, k = info.num_frames, model.num_keypoints
        self.keypoints = {f: np.full((n, k, 2), np.nan) for f in self.fields}
        self.likelihood = {f: np.zeros((n, k)) for f in self.fields}
        self.seen = np.zeros(n, dtype=bool)
        self.carry, self.carry_indices = None, np.zeros(0, dtype=np.int64)
        self.started = time.perf_counter()

    def push(self, indices: np.ndarray, images: torch.Tensor) -> None:
        model = self.model
        if not model.is_context:
            return self._store(indices, model(images))
        if self.carry is None:  # start of the video: the first frame stands in for frames -2 and -1
            self.carry = images[:1].expand(CONTEXT, -1, -1, -1)
            self.carry_indices = np.full(CONTEXT, -1)
        sequence = torch.cat([self.carry, images])
        sequence_indices = np.concatenate([self.carry_indices, indices])
        if indices[-1] == self.info.num_frames - 1:  # end of the video: the last frame stands in for the next two
            sequence = torch.cat([sequence, images[-1:].expand(CONTEXT, -1, -1, -1)])
            sequence_indices = np.concatenate([sequence_indices, np.full(CONTEXT, -1)])
        if len(sequence) > 2 * CONTEXT:
            self._store(sequence_indices[CONTEXT:-CONTEXT], model.forward_sequence(sequence))
        self.carry, self.carry_indices = sequence[-2 * CONTEXT :], sequence_indices[-2 * CONTEXT :]

    def _store(self, indices: np.ndarray, out: dict) -> None:
        size = (self.info.height, self.info.width)
        for f in self.fields:
            points = rescale_points(out[f"{f}keypoints"].float(), self.model.input_hw, size)
            self.keypoints[f][indices] = points.cpu().numpy()
            self.likelihood[f][indices] = out[f"{f}likelihood"].float().cpu().numpy()
        self.seen[indices] = True


def _write(writes: queue.Queue, results: dict, names: list[str], scorer: str) -> None:
    """Writer thread: a finished video's tables, off the model's critical path."""
    while (item := writes.get()) is not None:
        job_id, state = item
        video, csv_path, h5_path = (*state.job, None)[:3]
        try:
            if not state.seen.all():
                raise InputError(video, f"decoded {int(state.seen.sum())} of {state.info.num_frames} frames; the file may be truncated")
            table = pose_table(state.keypoints[""], names, scorer, state.likelihood[""])
            for f in state.fields[1:]:
                head_csv = Path(csv_path).parent / "heads" / f"{Path(csv_path).stem}_{f.rstrip('_')}.csv"
                write_pose_table(pose_table(state.keypoints[f], names, scorer, state.likelihood[f]), head_csv)
            write_pose_table(table, csv_path, h5_path)
            results[job_id] = VideoResult(str(video), table, time.perf_counter() - state.started)
        except Exception as err:
            results[job_id] = VideoResult(str(video), err if isinstance(err, InputError) else InputError(csv_path, f"cannot write: {err}"), 0.0)
