"""Video input and output behind one reader contract (:class:`VideoReader`).

Backends register in :data:`BACKENDS`; callers pick one with :func:`open_video`. Today there is the
CPU backend on PyAV; a GPU backend (DALI) can be added later without changing the callers.
"""

from __future__ import annotations

import os

from lightning_pose_lib.video.base import VideoInfo, VideoReader
from lightning_pose_lib.video.pyav_backend import PyAVReader, probe_video
from lightning_pose_lib.video.writer import write_video

BACKENDS: dict[str, type[VideoReader]] = {"pyav": PyAVReader}


def open_video(path: str | os.PathLike, backend: str = "auto") -> VideoReader:
    """Open (and validate) a video; InputError if the file is not a usable video.

    ``backend="auto"`` picks the best available one; for now that is always "pyav".
    """
    if backend == "auto":
        backend = "pyav"
    if backend not in BACKENDS:
        choices = ", ".join(["auto", *BACKENDS])
        raise ValueError(f"unknown video backend {backend!r}; choose one of: {choices}")
    return BACKENDS[backend](path)


__all__ = [
    "BACKENDS",
    "PyAVReader",
    "VideoInfo",
    "VideoReader",
    "open_video",
    "probe_video",
    "write_video",
]
