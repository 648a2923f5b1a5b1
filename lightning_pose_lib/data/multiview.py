"""Several synchronized cameras (``data.view_names``), in upstream Lightning Pose's layout.

One video per camera and session, named ``<session>_<view>.<ext>`` (the view's name is the last
``_`` token), all views of a session with the same frame count; one label CSV per view, rows
aligned by frame. The network is shared by the views: a labeled item holds every view of one
instant, an unlabeled clip the same frames of every view of one session, and the model runs each
view's frames through the same backbone and head (stacked into the batch).
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import InputError
from ..video import open_video, probe_video
from .labeled import LabeledFrames
from .labels import Labels
from .sessions import check_frame_counts
from .transforms import to_model_uint8


class MultiviewFrames(Dataset):
    """Labeled items of every view of one instant: ``image`` (V, 3, h, w) uint8, or (V, 5, 3, h, w)
    with context; ``keypoints`` (V, K, 2) model-input pixels; ``index``; ``orig_hw`` (V, 2)."""

    def __init__(self, views: Sequence[Labels], data_dir: str | os.PathLike, size_hw: tuple[int, int], rows=None, context: bool = False):
        self.views = [LabeledFrames(labels, data_dir, size_hw, rows, context) for labels in views]
        self.rows = self.views[0].rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        items = [view[i] for view in self.views]
        return {
            "image": torch.stack([item["image"] for item in items]),
            "keypoints": torch.stack([item["keypoints"] for item in items]),
            "index": items[0]["index"],
            "orig_hw": torch.stack([item["orig_hw"] for item in items]),
        }


class SessionClips(IterableDataset):
    """An endless, seeded stream of clips of ``length`` consecutive frames, the same frames of
    every view of a session (sessions drawn in proportion to their frame counts): ``frames``
    uint8 (V, L, 3, h, w), ``frame_indices`` (L,), ``orig_hw`` (V, 2)."""

    def __init__(self, sessions: dict[str, list[str]], length: int, size_hw: tuple[int, int], seed: int, backend: str = "pyav"):
        if not sessions:
            raise InputError(None, "the unsupervised losses need unlabeled videos, but data.video_dir has none")
        self.sessions = list(sessions.values())
        self.counts = [check_frame_counts(videos) for videos in self.sessions]
        if all(n < length for n in self.counts):
            raise InputError(self.sessions[0][0], f"every unlabeled video is shorter than a clip ({length} frames); lower dali.base.train.sequence_length")
        self.sizes = [[(i.height, i.width) for i in map(probe_video, videos)] for videos in self.sessions]
        self.length, self.size_hw, self.seed, self.backend = length, tuple(size_hw), seed, backend
        self.passes = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0, self.passes])
        self.passes += 1
        starts = np.array([max(0, n - self.length + 1) for n in self.counts], dtype=np.float64)
        readers: dict[str, object] = {}
        try:
            while True:
                s = int(rng.choice(len(self.sessions), p=starts / starts.sum()))
                start = int(rng.integers(0, starts[s]))
                indices = np.arange(start, start + self.length)
                frames = []
                for video in self.sessions[s]:
                    if video not in readers:
                        readers[video] = open_video(video, backend=self.backend)
                    frames.append(to_model_uint8(readers[video].read_frames(indices), self.size_hw))
                yield {
                    "frames": torch.stack(frames),
                    "frame_indices": torch.from_numpy(indices),
                    "orig_hw": torch.tensor(self.sizes[s], dtype=torch.float32),
                }
        finally:
            for reader in readers.values():
                reader.close()


def session_loader(sessions: dict[str, list[str]], length: int, size_hw: tuple[int, int], seed: int):
    """One clip of every view of a session per training step, decoded by PyAV in a worker."""
    from torch.utils.data import DataLoader

    return DataLoader(SessionClips(sessions, length, size_hw, seed), batch_size=1, num_workers=1, persistent_workers=True)
