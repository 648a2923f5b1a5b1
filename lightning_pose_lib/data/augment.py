"""Augmentation of labeled batches with kornia, on the training device.

Images are float (B, 3, H, W) in [0, 1] at the model size and keypoints (B, K, 2) in the same
pixels. Geometric transforms move the keypoints; a keypoint pushed out of the frame becomes NaN
and is then skipped by the supervised loss.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn


class Augmentation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        if name == "none":
            self.pipeline = None
            return
        if name != "dlc":
            raise ValueError(f"unknown augmentation {name!r} (known: none, dlc)")
        # The spirit of DeepLabCut's default imgaug pipeline, which upstream Lightning Pose uses.
        self.pipeline = K.AugmentationSequential(
            K.RandomAffine(degrees=25.0, scale=(0.85, 1.15), translate=(0.05, 0.05), p=0.4),
            K.RandomMotionBlur(kernel_size=5, angle=90.0, direction=0.5, p=0.5),
            K.ColorJitter(brightness=0.25, contrast=0.25, p=0.5),
            K.RandomGaussianNoise(mean=0.0, std=0.03, p=0.3),
            K.RandomErasing(scale=(0.005, 0.02), ratio=(0.5, 2.0), p=0.3),
            data_keys=["input", "keypoints"],
        )

    @torch.no_grad()
    def forward(self, images: torch.Tensor, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W), or (B, T, 3, H, W) context frames that all get the same transform."""
        if self.pipeline is None:
            return images, keypoints
        h, w = images.shape[-2:]
        missing = torch.isnan(keypoints).any(-1)
        # kornia cannot carry NaN through its matrices; park missing points and restore NaN after.
        parked = torch.nan_to_num(keypoints, nan=0.0)
        if images.ndim == 5:
            params = self.pipeline.forward_parameters(images[:, 0].shape)
            frames = []
            for t in range(images.shape[1]):
                frame, points = self.pipeline(images[:, t], parked, params=params)
                frames.append(frame)
                if t == images.shape[1] // 2:
                    moved = points
            images = torch.stack(frames, dim=1)
        else:
            images, moved = self.pipeline(images, parked)
        moved = moved.clone()
        outside = (moved[..., 0] < -0.5) | (moved[..., 0] > w - 0.5) | (moved[..., 1] < -0.5) | (moved[..., 1] > h - 0.5)
        moved[missing | outside] = float("nan")
        return images.clamp(0.0, 1.0), moved
