"""Unlabeled video clips for the unsupervised losses.

An endless, seeded stream of clips of ``length`` consecutive frames drawn at random from all videos
of a dataset (each video in proportion to its frame count), resized to the model size. Frames are
decoded through the video reader contract, so the same code serves every backend.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import InputError
from ..video import VideoInfo, open_video, probe_video
from .transforms import to_model_uint8


class UnlabeledClips(IterableDataset):
    """Items: ``frames`` uint8 (L, 3, h, w) at the model size, ``frame_indices`` (L,), ``video``
    (index into ``videos``) and ``orig_hw`` (height, width of the video)."""

    def __init__(self, videos: Sequence[str | os.PathLike], length: int, size_hw: tuple[int, int], seed: int, backend: str = "auto"):
        self.videos = [os.fspath(v) for v in videos]
        self.infos = probe_clip_sources(self.videos, length)
        self.length, self.size_hw, self.seed, self.backend = length, tuple(size_hw), seed, backend
        self.passes = 0  # iterations started in this process: each epoch draws new clips

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0, self.passes])
        self.passes += 1
        starts = np.array([max(0, i.num_frames - self.length + 1) for i in self.infos], dtype=np.float64)
        weights = starts / starts.sum()
        readers = {}
        try:
            while True:
                v = int(rng.choice(len(self.videos), p=weights))
                start = int(rng.integers(0, starts[v]))
                indices = np.arange(start, start + self.length)
                if v not in readers:
                    readers[v] = open_video(self.videos[v], backend=self.backend)
                frames = readers[v].read_frames(indices)
                resized = to_model_uint8(frames, self.size_hw)
                info = self.infos[v]
                yield {
                    "frames": resized,
                    "frame_indices": torch.from_numpy(indices),
                    "video": torch.tensor(v),
                    "orig_hw": torch.tensor([info.height, info.width], dtype=torch.float32),
                }
        finally:
            for reader in readers.values():
                reader.close()


def probe_clip_sources(videos: Sequence[str | os.PathLike], length: int) -> list[VideoInfo]:
    """The :class:`VideoInfo` of each unlabeled video; InputError when there are none, or when
    none holds a clip of ``length`` frames."""
    if not videos:
        raise InputError(None, "the unsupervised losses need unlabeled videos, but data.video_dir has none")
    infos = [probe_video(v) for v in videos]
    if all(i.num_frames < length for i in infos):
        raise InputError(infos[0].path, f"every unlabeled video is shorter than a clip ({length} frames); lower dali.base.train.sequence_length")
    return infos


CLIP_PIPELINES = 2
RUN_FRAMES, RUN_BYTES = 128, 256 * 2**20  # frames decoded after each seek (at most), cut into clips
SHUFFLE_CLIPS = 32  # clips waiting in the shuffle buffer


class DaliUnlabeledClips:
    """The items of :class:`UnlabeledClips` (batched by one; ``frames`` and ``orig_hw``, which is
    all the losses use), decoded by DALI on the GPU and resized there: the GPU path of the
    unlabeled data, iterated in the training process without a host round trip.

    A random clip starts decoding at the keyframe before it: on the example video (a keyframe
    every 240 frames) a 16-frame clip cost about 8 times its frames, and DALI delivered only
    13.6-23.5 clips a second on the H200 (docs/benchmarks.md), no more than training takes. So
    each seek decodes a run of up to ``run_frames`` consecutive frames (fewer for large frames:
    a run's decoded frames stay under ``RUN_BYTES``, and runs fit in the shortest video), cut
    into clips of ``length`` frames that wait, with those of other runs, in a buffer of
    ``shuffle`` clips on the GPU; each step takes a random clip from it. Runs come in random
    order (DALI's shuffle), from ``pipelines`` pipelines taking turns, each decoding its next run
    meanwhile. Clips are whole and do not overlap; a video's frames after its last whole run are
    not drawn. Pipeline 0 draws with ``seed``, the others with seeds spawned from it
    (:func:`pipeline_seeds`); the buffer draws with ``seed`` too."""

    def __init__(self, videos: Sequence[str | os.PathLike], length: int, size_hw: tuple[int, int], seed: int,
                 pipelines: int = CLIP_PIPELINES, run_frames: int = RUN_FRAMES, shuffle: int = SHUFFLE_CLIPS):
        from ..video.dali_backend import DaliClips

        infos = probe_clip_sources(videos, length)
        usable = [i for i in infos if i.num_frames >= length]
        frame_bytes = max(i.height * i.width * 3 for i in infos)
        frames = min(run_frames, RUN_BYTES // frame_bytes, min(i.num_frames for i in usable))
        self.run = max(1, frames // length)  # clips per run
        self.sources = [DaliClips(videos, length * self.run, s) for s in pipeline_seeds(seed, pipelines)]
        self.length, self.size_hw, self.shuffle, self.seed = length, tuple(size_hw), max(shuffle, self.run), seed
        self.stream = None

    def __iter__(self):
        # One endless stream across epochs: a new pipeline per epoch would cost its set-up each
        # time and replay the same clips.
        if self.stream is None:
            self.stream = self._items()
        return self.stream

    def _items(self):
        runs = self._runs()
        rng = np.random.default_rng(self.seed)
        buffer: list[tuple[torch.Tensor, torch.Tensor]] = []
        while True:
            while len(buffer) < self.shuffle:
                frames = next(runs)
                hw = torch.tensor([[frames.shape[1], frames.shape[2]]], dtype=torch.float32)
                # Resized clip by clip: a whole run in float at full size could take gigabytes.
                buffer.extend((to_model_uint8(clip, self.size_hw, frames.device), hw) for clip in frames.split(self.length))
            pick = int(rng.integers(len(buffer)))
            buffer[pick], buffer[-1] = buffer[-1], buffer[pick]
            clip, hw = buffer.pop()
            yield {"frames": clip[None], "orig_hw": hw}

    def _runs(self):
        sources = [iter(source) for source in self.sources]
        while True:
            for source in sources:
                yield next(source)


def pipeline_seeds(seed: int, pipelines: int) -> list[int]:
    """``seed`` for pipeline 0, and for the others seeds spawned from it. Spawned, not derived as
    the ranks' seeds are (``train.unlabeled_seed``: from ``[seed, rank]``): that formula would give
    rank 0's pipeline 1 the seed of rank 1's pipeline 0, and the two would draw the same clips."""
    return [seed] + [int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1)[0]) for k in range(1, pipelines)]


def unlabeled_loader(videos: Sequence[str | os.PathLike], length: int, size_hw: tuple[int, int], seed: int, backend: str = "auto"):
    """One unlabeled clip per training step, from DALI on a GPU machine or PyAV in a worker process."""
    from torch.utils.data import DataLoader

    from ..video import choose_backend

    if choose_backend(backend) == "dali":
        return DaliUnlabeledClips(videos, length, size_hw, seed)
    clips = UnlabeledClips(videos, length, size_hw, seed, backend="pyav")
    # One worker decodes the next clip while the model trains on this one.
    return DataLoader(clips, batch_size=1, num_workers=1, persistent_workers=True)
