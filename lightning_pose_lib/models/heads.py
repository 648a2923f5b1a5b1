"""Heads: features (B, C, H/32, W/32) -> heatmap logits (B, K, H/4, W/4) or coordinates (B, K, 2)."""

from __future__ import annotations

import torch
from torch import nn


class HeatmapHead(nn.Module):
    """PixelShuffle(2) then two stride-2 transposed convolutions: stride 32 -> stride 4.

    As upstream Lightning Pose: no normalisation between layers, Xavier init with gain 0.01 so the
    first heatmaps are nearly uniform.
    """

    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.PixelShuffle(2),
            nn.ConvTranspose2d(in_channels // 4, num_keypoints, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(num_keypoints, num_keypoints, 3, stride=2, padding=1, output_padding=1),
        )
        for m in self.layers:
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.xavier_uniform_(m.weight, gain=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class RegressionHead(nn.Module):
    """Global average pooling and a linear layer to (x, y) per keypoint, in model-input pixels."""

    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.linear = nn.Linear(in_channels, 2 * num_keypoints)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.mean(dim=(-2, -1))).view(-1, self.num_keypoints, 2)
