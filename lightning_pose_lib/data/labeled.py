"""The labeled-frame dataset: images resized to the model size once, kept in memory as uint8."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import read_image
from .labels import Labels
from .transforms import rescale_points, to_model_input


class LabeledFrames(Dataset):
    """Items: ``image`` float (3, h, w) in [0, 1]; ``keypoints`` (K, 2) model-input pixels (NaN =
    unlabeled); ``index`` (row of the label CSV); ``orig_hw`` (height, width of the original image)."""

    def __init__(self, labels: Labels, data_dir: str | os.PathLike, size_hw: tuple[int, int], rows=None):
        self.rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
        self.size_hw = tuple(size_hw)
        images, sizes = [], []
        for row in self.rows:
            frame = read_image(Path(data_dir) / labels.image_paths[row])
            sizes.append(frame.shape[:2])
            images.append(to_model_input(frame[None], self.size_hw).mul_(255).round_().to(torch.uint8)[0])
        self.images = torch.stack(images) if images else torch.empty(0, 3, *self.size_hw, dtype=torch.uint8)
        self.orig_hw = torch.tensor(sizes, dtype=torch.float32).reshape(-1, 2)
        points = torch.from_numpy(labels.keypoints[self.rows]).float()
        self.keypoints = torch.stack([rescale_points(p, tuple(hw.tolist()), self.size_hw) for p, hw in zip(points, self.orig_hw)]) if len(points) else points

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i].float().div_(255.0),
            "keypoints": self.keypoints[i],
            "index": torch.tensor(self.rows[i]),
            "orig_hw": self.orig_hw[i],
        }
