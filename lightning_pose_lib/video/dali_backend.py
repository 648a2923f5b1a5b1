"""GPU video backend on NVIDIA DALI (NVDEC decoding), behind the :class:`VideoReader` contract.

``fn.experimental.readers.video`` runs with ``device="gpu"`` when a GPU is present and with
``device="cpu"`` otherwise; the CPU variant of DALI 2.x decodes only VP8, VP9 and MJPEG (no H.264),
which is how the tests exercise this code on machines without a GPU. Frames stay where DALI
decoded them (a CUDA tensor on the GPU); resizing and normalisation then happen in the same torch
code as for every other backend.

Traps handled here: the reader's default ``pad_mode="none"`` silently drops the last partial
sequence, so for prediction sequences are padded with zero frames whose index is -1, and those
are dropped. One pipeline decodes a whole list of videos (its set-up costs about a second).
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

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
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def _sequences(files: list[str], length: int, device: str, shuffle: bool, seed: int, numbered: bool):
    """A DALI pipeline over ``files`` yielding sequences of ``length`` consecutive frames, uint8
    (L, H, W, 3). ``numbered``: every sequence of every file, in order, with the file's position in
    ``files`` and each frame's index (-1 for the zero frames padding a file's last sequence);
    otherwise only whole sequences and the frames alone (nothing to copy back to the host)."""
    import torch
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=1, num_threads=2, device_id=torch.cuda.current_device() if device == "gpu" else None, seed=seed, prefetch_queue_depth=2)
    def pipe():
        numbering = {"pad_mode": "constant", "enable_frame_num": "sequence", "labels": list(range(len(files)))} if numbered else {}
        outputs = fn.experimental.readers.video(
            device=device, filenames=files, sequence_length=length, step=length, pad_last_batch=True,
            random_shuffle=shuffle, initial_fill=16, seed=seed, name="reader", **numbering,
        )
        return tuple(outputs) if numbered else outputs

    return pipe()


def _decode(infos: list[VideoInfo], length: int, device: str) -> Iterator[tuple]:
    """The events of :meth:`VideoReader.stream` for ``infos`` decoded by one pipeline, in order;
    positions index ``infos``. A video DALI yields no frames for gets no events at all, and one cut
    short ends early: callers check what arrived against ``num_frames``."""
    import torch
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    pipe = _sequences([i.path for i in infos], length, device, shuffle=False, seed=0, numbered=True)
    iterator = DALIGenericIterator(pipe, ["frames", "video", "indices"], reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=False)
    current = None
    for batch in iterator:
        video = int(batch[0]["video"].reshape(-1)[0])
        indices = batch[0]["indices"][0].cpu().numpy().astype(np.int64)
        if video != current:
            if current is not None:
                yield ("end", current)
            current = video
            yield ("start", video, infos[video])
        keep = indices >= 0
        if keep.all():
            yield ("batch", video, indices, batch[0]["frames"][0])
        elif keep.any():
            yield ("batch", video, indices[keep], batch[0]["frames"][0][torch.from_numpy(keep).to(batch[0]["frames"].device)])
    if current is not None:
        yield ("end", current)


class DaliReader(VideoReader):
    """One video through DALI; frames are torch tensors on the decoding device."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device | None = None):
        import torch

        if not dali_available():
            raise RuntimeError("the DALI backend needs nvidia-dali (pip install nvidia-dali-cuda120)")
        self.info: VideoInfo = probe_video(path)
        self.device = _device() if device is None else "cpu" if torch.device(device).type == "cpu" else "gpu"  # DALI's names
        if self.device == "cpu" and self.info.codec not in CPU_CODECS:
            raise InputError(path, f"DALI decodes {self.info.codec} only on a GPU (on CPU: {', '.join(CPU_CODECS)}); use the pyav backend")

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        self._check_batch_size(batch_size)
        for kind, _, *payload in _decode([self.info], batch_size, self.device):
            if kind == "batch":
                yield payload[0], payload[1]

    @classmethod
    def stream(cls, paths: Sequence[str], batch_size: int, device=None) -> Iterator[tuple]:
        """All videos through one DALI pipeline (building one per video costs about a second each).
        Videos that fail to open are reported first; if decoding fails, the video being decoded is
        reported and the ones after it go on one pipeline each, so each error names its own file."""
        cls._check_batch_size(batch_size)
        readers = yield from cls._open_each(paths, device)
        todo = list(readers)
        if not todo:
            return
        started, ended = set(), set()
        try:
            for kind, position, *payload in _decode([readers[i].info for i in todo], batch_size, readers[todo[0]].device):
                i = todo[position]
                if kind == "start":
                    started.add(i)
                elif kind == "end":
                    ended.add(i)
                yield (kind, i, *payload)
        except Exception as err:
            for i in sorted(started - ended):
                yield ("error", i, InputError(paths[i], f"cannot decode: {err}"))
            rest = [i for i in todo if i not in started]
            for kind, position, *payload in super().stream([paths[i] for i in rest], batch_size, device):
                yield (kind, rest[position], *payload)

    def read_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Random access through one sequential pass over the needed span (DALI has no cheap
        single-frame seek); training draws clips through :class:`DaliClips` instead."""
        import torch

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
    """Endless runs of ``length`` consecutive frames from ``files``, in random order, for the
    unsupervised losses: non-overlapping runs, shuffled through DALI's buffer (as upstream Lightning
    Pose shuffles its clips). Yields frames uint8 (length, H, W, 3) on the decoding device. A
    video's last partial run is never drawn, and nothing is copied back to the host, so the
    training step never waits on it."""

    def __init__(self, files: Sequence[str], length: int, seed: int, device: str | None = None):
        self.files, self.length, self.seed = [os.fspath(f) for f in files], length, seed
        self.device = device or _device()

    def __iter__(self):
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = _sequences(self.files, self.length, self.device, shuffle=True, seed=self.seed, numbered=False)
        iterator = DALIGenericIterator(pipe, ["frames"], reader_name="reader", last_batch_policy=LastBatchPolicy.DROP, auto_reset=True)
        while True:
            for batch in iterator:
                yield batch[0]["frames"][0]
