"""Video input and output behind one reader contract (:class:`VideoReader`).

Backends register in :data:`BACKENDS`; callers pick one with :func:`open_video`. PyAV decodes on the
CPU everywhere; DALI decodes on the GPU (NVDEC).
"""

from __future__ import annotations

import os

from lightning_pose_lib.video.base import VIDEO_SUFFIXES, VideoInfo, VideoReader, list_videos
from lightning_pose_lib.video.pyav_backend import PyAVReader, probe_video
from lightning_pose_lib.video.writer import write_video
from lightning_pose_lib.video.dali_backend import DaliReader, dali_available

BACKENDS: dict[str, type[VideoReader]] = {"pyav": PyAVReader, "dali": DaliReader}

# CPUs from which ``auto`` decodes with PyAV rather than DALI on a GPU. Measured on the H200 machine
# (ResNet-50 heatmap model, ~400 px H.264, docs/benchmarks.md): PyAV predicted 8,860 frames/s with
# 12-13 of 16 cores decoding, about 700 frames/s per core; DALI 4,283 frames/s with 2-3 cores
# (NVDEC shares the GPU with the model). PyAV thus matches DALI with about 6 decoding cores, plus
# one or two for the process that feeds the GPU: from 8 CPUs on, PyAV is as fast and gains with
# every further core; below, DALI is faster.
PYAV_MIN_CPUS = 8


def available_cpus() -> int:
    """The CPUs this process may run on (a SLURM job's allocation, taskset), not the machine's."""
    return len(os.sched_getaffinity(0))


def prediction_backend(backend: str = "auto", cpus: int | None = None) -> tuple[str, str]:
    """The backend that predicts videos here, and why (one phrase, for the log): ``auto`` decides
    from the GPU, DALI and the CPUs this job may use (``cpus``, default :func:`available_cpus`)."""
    import torch

    if backend != "auto":
        return backend, "asked for"
    cpus = available_cpus() if cpus is None else cpus
    if not torch.cuda.is_available():
        return "pyav", "no GPU: DALI decodes H.264 only on a GPU"
    if cpus >= PYAV_MIN_CPUS:  # decided without importing DALI, which a job then never uses
        return "pyav", f"{cpus} CPUs available to this job (>= {PYAV_MIN_CPUS}): CPU decoding outpaces DALI's"
    if not dali_available():
        return "pyav", "DALI is not installed"
    return "dali", f"only {cpus} CPUs available to this job (< {PYAV_MIN_CPUS}): DALI decodes on the GPU with 2-3 cores"


def choose_backend(backend: str = "auto") -> str:
    """``auto`` for reading clips (training's unlabeled clips, one per step, which two or three
    cores of DALI serve): DALI where it and a GPU are present, PyAV otherwise. Prediction decides
    with :func:`prediction_backend`."""
    if backend != "auto":
        return backend
    import torch

    return "dali" if dali_available() and torch.cuda.is_available() else "pyav"


def open_video(path: str | os.PathLike, backend: str = "auto", device=None) -> VideoReader:
    """Open (and validate) a video; InputError if the file is not a usable video.

    ``backend="auto"`` picks DALI on a machine with a GPU and DALI, PyAV otherwise. ``device``:
    where frames are delivered (None: where the backend decodes).
    """
    return _backend_class(backend)(path, device=device)


def stream_videos(paths: list[str | os.PathLike], batch_size: int, backend: str = "auto", device=None):
    """Decode many videos as one stream of events (see :meth:`VideoReader.stream`), frames on
    ``device``; a backend that can (DALI) decodes them all in one pass."""
    return _backend_class(backend).stream([os.fspath(p) for p in paths], batch_size, device)


def prepare_streams(streams: list[list[str | os.PathLike]], batch_size: int, backend: str = "auto", device=None) -> None:
    """Get ready for concurrent :func:`stream_videos` calls, one per list of ``streams`` (see
    :meth:`VideoReader.prepare`)."""
    _backend_class(backend).prepare([[os.fspath(p) for p in paths] for paths in streams], batch_size, device)


def _backend_class(backend: str) -> type[VideoReader]:
    backend = choose_backend(backend)
    if backend not in BACKENDS:
        choices = ", ".join(["auto", *BACKENDS])
        raise ValueError(f"unknown video backend {backend!r}; choose one of: {choices}")
    return BACKENDS[backend]


__all__ = [
    "stream_videos",
    "prepare_streams",
    "BACKENDS",
    "DaliReader",
    "available_cpus",
    "list_videos",
    "VIDEO_SUFFIXES",
    "prediction_backend",
    "choose_backend",
    "dali_available",
    "PyAVReader",
    "VideoInfo",
    "VideoReader",
    "open_video",
    "probe_video",
    "write_video",
]
