"""The labeled-frame dataset: images resized to the model size once, kept in memory as uint8."""

from __future__ import annotations

import concurrent.futures
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import read_image
from .labels import Labels
from .transforms import rescale_points, to_model_uint8
from ..video import available_cpus

DECODE_THREADS = 8  # threads decoding labeled images, at most (and at most the CPUs of the job)


class LabeledFrames(Dataset):
    """Items: ``image`` float (3, h, w) in [0, 1], or (5, 3, h, w) frames t-2..t+2 with
    ``context=True``; ``keypoints`` (K, 2) model-input pixels (NaN = unlabeled); ``index`` (row of
    the label CSV); ``orig_hw`` (height, width of the original image)."""

    def __init__(self, labels: Labels, data_dir: str | os.PathLike, size_hw: tuple[int, int], rows=None, context: bool = False, decoded: Sequence[LabeledFrames] = ()):
        """``decoded``: frames of these labels already read at this size (the training and
        validation sets, when a training ends); their rows are taken from them, not read again."""
        self.rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
        self.size_hw = tuple(size_hw)
        self.context = context
        known = {int(row): (part, i) for part in decoded if (part.size_hw, part.context) == (self.size_hw, context) for i, row in enumerate(part.rows)}

        def read(row: int) -> tuple[tuple[int, int], torch.Tensor]:
            """The labeled frame's size, and it (with its neighbours, for context) at the model's size."""
            if int(row) in known:
                part, i = known[int(row)]
                return tuple(part.orig_hw[i].int().tolist()), part.images[i]
            path = Path(data_dir) / labels.image_paths[row]
            frame = read_image(path)
            frames = [frame if p == path else read_image(p) for p in context_paths(path)] if context else [frame]
            resized = to_model_uint8(np.stack(frames), self.size_hw)
            return frame.shape[:2], resized if context else resized[0]

        sizes, images = zip(*_in_threads(read, self.rows)) if len(self.rows) else ((), ())
        empty_shape = (0, 5, 3, *self.size_hw) if context else (0, 3, *self.size_hw)
        self.images = torch.stack(images) if images else torch.empty(empty_shape, dtype=torch.uint8)
        self.orig_hw = torch.tensor(sizes, dtype=torch.float32).reshape(-1, 2)
        points = torch.from_numpy(labels.keypoints[self.rows]).float()
        self.keypoints = torch.stack([rescale_points(p, tuple(hw.tolist()), self.size_hw) for p, hw in zip(points, self.orig_hw)]) if len(points) else points

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i],  # uint8: a quarter of the bytes to copy; the model scales it on the device
            "keypoints": self.keypoints[i],
            "index": torch.tensor(self.rows[i]),
            "orig_hw": self.orig_hw[i],
        }


def _in_threads(read, rows) -> list:
    """``read(row)`` for each row, in order, by a few threads: PIL decodes and torch resizes
    without holding the interpreter lock (90 PNGs of 1,200 x 1,200 pixels: 2.4 s one after another
    on the 2-core machine, 1.6 s in 2 threads)."""
    with concurrent.futures.ThreadPoolExecutor(min(DECODE_THREADS, available_cpus())) as pool:
        return list(pool.map(read, rows))


def context_paths(path: Path, radius: int = 2) -> list[Path]:
    """Image files of frames n-2..n+2 for a labeled frame whose file name holds its frame number n
    (the first run of digits, zero padding kept, as upstream Lightning Pose). A neighbour that
    does not exist, or lies before frame 0, is replaced by the labeled frame itself."""
    match = re.search(r"\d+", path.stem)
    if match is None:
        return [path] * (2 * radius + 1)
    digits = match.group()
    out = []
    for offset in range(-radius, radius + 1):
        n = int(digits) + offset
        neighbour = path.with_name(path.stem[: match.start()] + str(n).zfill(len(digits)) + path.stem[match.end():] + path.suffix)
        out.append(neighbour if n >= 0 and neighbour.exists() else path)
    return out
