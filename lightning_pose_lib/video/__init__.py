"""Video input and output behind one reader contract (:class:`VideoReader`).

Backends register in :data:`BACKENDS`; callers pick one with :func:`open_video`. PyAV decodes on the
CPU everywhere; DALI decodes on the GPU (NVDEC).
"""

from __future__ import annotations

import os

from lightning_pose_lib.video.base import VideoInfo, VideoReader
from lightning_pose_lib.video.pyav_backend import PyAVReader, probe_video
from lightning_pose_lib.video.writer import write_video
from lightning_pose_lib.video.dali_backend import DaliReader, dali_available

BACKENDS: dict[str, type[VideoReader]] = {"pyav": PyAVReader, "dali": DaliReader}


def choose_backend(backend: str = "auto") -> str:
    """``auto``: DALI where it and a GPU are present (NVDEC decoding), PyAV otherwise."""
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


def prepare_streams(count: int, backend: str = "auto", device=None) -> None:
    """Get ready for ``count`` concurrent :func:`stream_videos` calls (see :meth:`VideoReader.prepare`)."""
    _backend_class(backend).prepare(count, device)


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
    "choose_backend",
    "dali_available",
    "PyAVReader",
    "VideoInfo",
    "VideoReader",
    "open_video",
    "probe_video",
    "write_video",
]
