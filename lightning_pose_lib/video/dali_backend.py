"""GPU video backend on NVIDIA DALI (NVDEC decoding), behind the :class:`VideoReader` contract.

``fn.experimental.readers.video`` runs with ``device="gpu"`` when a GPU is present and with
``device="cpu"`` otherwise; the CPU variant of DALI 2.x decodes only VP8, VP9 and MJPEG (no H.264),
which is how the tests exercise this code on machines without a GPU. Frames stay where DALI
decoded them (a CUDA tensor on the GPU); resizing and normalisation then happen in the same torch
code as for every other backend.

Traps handled here: the reader's default ``pad_mode="none"`` silently drops the last partial
sequence, so sequences are padded with zero frames whose index is -1, and those are dropped.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError
from .base import VideoInfo, VideoReader
from .pyav_backend import probe_video

CPU_CODECS = ("vp8", "vp9", "mjpeg")


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def _device() -> str:
    return "gpu" if torch.cuda.is_available() else "cpu"


def _sequences(files: list[str], length: int, device: str, shuffle: bool, seed: int, name: str = "reader"):
    """A DALI pipeline yielding (frames uint8 (L, H, W, 3), frame indices (L,)) per sample."""
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=1, num_threads=2, device_id=torch.cuda.current_device() if device == "gpu" else None, seed=seed, prefetch_queue_depth=2)
    def pipe():
        frames, indices = fn.experimental.readers.video(
            device=device,
            filenames=files,
            sequence_length=length,
            step=length,
            pad_mode="constant",
            enable_frame_num="sequence",
            pad_last_batch=True,
            random_shuffle=shuffle,
            initial_fill=16,
            seed=seed,
            name=name,
        )
        return frames, indices

    return pipe()


class DaliReader(VideoReader):
    """One video through DALI; frames are torch tensors on the decoding device."""

    def __init__(self, path: str | os.PathLike, device: str | None = None):
        if not dali_available():
            raise RuntimeError("the DALI backend needs nvidia-dali (pip install nvidia-dali-cuda120)")
        self.info: VideoInfo = probe_video(path)
        self.device = device or _device()
        if self.device == "cpu" and self.info.codec not in CPU_CODECS:
            raise InputError(path, f"DALI decodes {self.info.codec} only on a GPU (on CPU: {', '.join(CPU_CODECS)}); use the pyav backend")

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        self._check_batch_size(batch_size)
        pipe = _sequences([self.info.path], batch_size, self.device, shuffle=False, seed=0)
        iterator = DALIGenericIterator(pipe, ["frames", "indices"], reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=False)
        for batch in iterator:
            frames, indices = batch[0]["frames"][0], batch[0]["indices"][0].cpu().numpy().astype(np.int64)
            keep = indices >= 0
            if keep.any():
                yield indices[keep], frames[torch.from_numpy(keep).to(frames.device)]

    def read_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Random access through one sequential pass over the needed span (DALI has no cheap
        single-frame seek); training draws clips through :class:`DaliClips` instead."""
        wanted = self._check_indices(indices)
        if wanted.size == 0:
            return torch.empty(0, self.info.height, self.info.width, 3, dtype=torch.uint8)
        needed = set(wanted.tolist())
        found: dict[int, torch.Tensor] = {}
        for batch_indices, frames in self.iter_batches(256):
            for i, frame in zip(batch_indices.tolist(), frames):
                if i in needed:
                    found[i] = frame
            if batch_indices[-1] >= wanted.max():
                break
        return torch.stack([found[i] for i in wanted.tolist()])


class DaliClips:
    """Endless random clips of ``length`` consecutive frames from ``files`` for the unsupervised
    losses: non-overlapping clips, shuffled through DALI's buffer (as upstream Lightning Pose).
    Yields (frames uint8 (L, H, W, 3) on the decoding device, frame indices (L,), file index)."""

    def __init__(self, files: Sequence[str], length: int, seed: int, device: str | None = None):
        self.files, self.length, self.seed = [os.fspath(f) for f in files], length, seed
        self.device = device or _device()

    def __iter__(self):
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = _sequences(self.files, self.length, self.device, shuffle=True, seed=self.seed)
        iterator = DALIGenericIterator(pipe, ["frames", "indices"], reader_name="reader", last_batch_policy=LastBatchPolicy.DROP, auto_reset=True)
        while True:
            for batch in iterator:
                indices = batch[0]["indices"][0].cpu().numpy().astype(np.int64)
                if (indices >= 0).all():  # skip the padded tail of a video
                    yield batch[0]["frames"][0], indices
