"""Supervised losses on labeled frames."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_loss


@register_loss("heatmap_mse")
class HeatmapMSE(nn.Module):
    """Mean over labeled keypoints of the squared heatmap error summed over pixels.

    Equal to upstream's mean over pixels times h * w, which makes it independent of resolution.
    All-zero targets (unlabeled keypoints) are skipped.
    """

    def forward(self, out: dict) -> torch.Tensor:
        pred, target = out["heatmaps"], out["target_heatmaps"]
        per_map = ((pred.float() - target) ** 2).sum(dim=(-2, -1))
        labeled = target.sum(dim=(-2, -1)) > 0
        if not labeled.any():
            return pred.sum() * 0.0
        return per_map[labeled].mean()


@register_loss("regression_mse")
class RegressionMSE(nn.Module):
    """Mean squared error of coordinates normalised by the image size, labeled keypoints only."""

    def forward(self, out: dict) -> torch.Tensor:
        pred, target = out["normalized_keypoints"], out["target_normalized_keypoints"]
        labeled = ~torch.isnan(target).any(-1)
        if not labeled.any():
            return pred.sum() * 0.0
        return ((pred.float()[labeled] - target[labeled]) ** 2).sum(-1).mean()
