"""The reader contract every video backend implements.

Training (random clips of consecutive frames for the unsupervised losses) and prediction (every frame
once, in order) only talk to :class:`VideoReader`, so a GPU backend can replace the CPU one without
touching them. Frame ``i`` always means the ``i``-th frame in presentation order, counted from 0.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Iterator, Sequence

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """What a validated video looks like; ``num_frames`` is exact, not the container's estimate."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    codec: str


class VideoReader(abc.ABC):
    """Decodes one video to uint8 RGB frames of shape (H, W, 3).

    Backends are built as ``Backend(path, device=None)``: ``device`` is where :meth:`iter_batches`
    delivers frames (None: where the backend decodes, the CPU for PyAV, the GPU for DALI)."""

    info: VideoInfo

    @abc.abstractmethod
    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every frame exactly once, in order, the last batch possibly shorter:
        yields (frame_indices int64 shape (B,), frames uint8 shape (B, H, W, 3) RGB).

        Frames are a numpy array on the CPU, or a torch tensor on the reader's device (a GPU); :func:`lightning_pose_lib.data.transforms.to_model_input` takes both."""

    @abc.abstractmethod
    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Random access: the frames at ``indices`` (any order, repeats allowed), uint8 (N, H, W, 3) RGB.

        Frames must be exact: the same pixels as the sequential decode, also for H.264 with B-frames.
        """

    @classmethod
    def stream(cls, paths: Sequence[str], batch_size: int, device=None) -> Iterator[tuple]:
        """Many videos decoded one after another as one stream of events, each tagged with the
        video's position in ``paths``:

        - ``("start", i, info)``, then ``("batch", i, frame_indices, frames)`` as in
          :meth:`iter_batches` (on ``device``; or, from a backend that decodes on the CPU for a
          GPU, :class:`~lightning_pose_lib.video.yuv.YUV420Frames`, the frames not yet converted
          to RGB), then ``("end", i)``;
        - or ``("error", i, exception)`` where the video cannot be (fully) decoded; the stream goes
          on with the next video.

        This one-reader-per-video version serves every backend; a backend that can decode a list
        of files in one pass (DALI) overrides it to save the per-video set-up.
        """
        for i, path in enumerate(paths):
            try:
                with cls(path, device=device) as reader:
                    yield ("start", i, reader.info)
                    for indices, frames in reader.iter_batches(batch_size):
                        yield ("batch", i, indices, frames)
                yield ("end", i)
            except Exception as err:  # reported for this video; the next ones go on
                yield ("error", i, err)

    @classmethod
    def _open_each(cls, paths: Sequence[str], device=None):
        """For a :meth:`stream` that decodes many videos at once: yields ``("error", i, exception)``
        for each path that cannot be opened, and returns the readers of the others by position."""
        readers = {}
        for i, path in enumerate(paths):
            try:
                readers[i] = cls(path, device=device)
            except Exception as err:
                yield ("error", i, err)
        return readers

    @classmethod
    def prepare(cls, streams: list[list[str]], batch_size: int, device=None) -> None:
        """Get ready for the concurrent :meth:`stream` calls about to come, one per list of
        ``streams`` (their ``paths``), e.g. start worker processes that begin decoding in the
        background; most backends need nothing."""

    def close(self) -> None:
        """Release decoder resources; the base class holds none."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Argument checks shared by all backends, so they reject the same calls the same way.

    @staticmethod
    def _check_batch_size(batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def _check_indices(self, indices: Sequence[int]) -> np.ndarray:
        """``indices`` as an int64 vector, or IndexError naming the first one out of range."""
        array = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = array[(array < 0) | (array >= self.info.num_frames)]
        if bad.size:
            raise IndexError(
                f"frame index {int(bad[0])} out of range for {self.info.path} "
                f"({self.info.num_frames} frames)"
            )
        return array


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def list_videos(folder: str | os.PathLike) -> list[str]:
    """Video files directly inside ``folder``, sorted."""
    if not os.path.isdir(folder):
        raise InputError(folder, "video folder not found (data.video_dir)")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(VIDEO_SUFFIXES) and not f.startswith("."))
