"""Heads: features (B, C, H/s, W/s) -> heatmap logits (B, K, H/4, W/4) or coordinates (B, K, 2)."""

from __future__ import annotations

import torch
from torch import nn


HEAD_INIT_GAIN = 1.0


class HeatmapHead(nn.Module):
    """PixelShuffle(2) then stride-2 transposed convolutions down to stride 4: two from a stride-32
    backbone, one from a stride-16 one (the ViT).

    As upstream Lightning Pose, no normalisation between layers; unlike upstream, Xavier init with
    gain 1, not 0.01. From random initialisation, gain 0.01's nearly uniform first heatmaps left the
    model predicting about the mean pose for the first 75-200 steps, a wait that varied by seed: with
    the demo's 250 steps, 6 of 30 seeds ended unconverged (6.5-11.5 px against a 3.2 px median).
    Gain 1 with the KL loss (the default ``heatmap_loss_type``) converged in every seed tried
    (docs/benchmarks.md, accuracy).
    """

    def __init__(self, in_channels: int, num_keypoints: int, in_stride: int = 32):
        super().__init__()
        if in_stride not in (16, 32):
            raise ValueError(f"the heatmap head needs stride-16 or stride-32 features, not stride {in_stride}")
        deconvs = [nn.ConvTranspose2d(in_channels // 4, num_keypoints, 3, stride=2, padding=1, output_padding=1)]
        if in_stride == 32:
            deconvs.append(nn.ConvTranspose2d(num_keypoints, num_keypoints, 3, stride=2, padding=1, output_padding=1))
        self.layers = nn.Sequential(nn.PixelShuffle(2), *deconvs)
        for m in deconvs:
            nn.init.xavier_uniform_(m.weight, gain=HEAD_INIT_GAIN)
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


class ContextHead(nn.Module):
    """Temporal context head of ``heatmap_mhcrnn``: frames t-2..t+2 -> heatmap logits for frame t.

    Each frame's features are upsampled to per-keypoint maps (a :class:`HeatmapHead`); a forward and
    a backward recurrence over the five frames then mix them, each step adding the frame's maps to a
    per-keypoint (grouped) convolution of the running state; the result is the mean of both
    directions (upstream Lightning Pose's UpsamplingCRNN, with 3x3 grouped mixing).
    """

    def __init__(self, in_channels: int, num_keypoints: int, in_stride: int = 32):
        super().__init__()
        self.upsample = HeatmapHead(in_channels, num_keypoints, in_stride)
        self.forward_mix = nn.Conv2d(num_keypoints, num_keypoints, 3, padding=1, groups=num_keypoints)
        self.backward_mix = nn.Conv2d(num_keypoints, num_keypoints, 3, padding=1, groups=num_keypoints)
        for conv in (self.forward_mix, self.backward_mix):
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, t = features.shape[:2]
        maps = self.upsample(features.flatten(0, 1))
        maps = maps.view(b, t, *maps.shape[1:])
        state_f = maps[:, 0]
        for i in range(1, t):
            state_f = maps[:, i] + self.forward_mix(state_f)
        state_b = maps[:, t - 1]
        for i in range(t - 2, -1, -1):
            state_b = maps[:, i] + self.backward_mix(state_b)
        return (state_f + state_b) / 2
