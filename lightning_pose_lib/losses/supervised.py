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
        return masked_mean(per_map, target.sum(dim=(-2, -1)) > 0)


@register_loss("regression_mse")
class RegressionMSE(nn.Module):
    """Mean squared error of coordinates normalised by the image size, labeled keypoints only."""

    def forward(self, out: dict) -> torch.Tensor:
        pred, target = out["normalized_keypoints"], out["target_normalized_keypoints"]
        labeled = ~torch.isnan(target).any(-1)
        return masked_mean(((pred.float() - target.nan_to_num()) ** 2).sum(-1), labeled)


def masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``keep`` is True; 0 (still a function of ``values``, so backward
    works) where nothing is kept. Computed without selecting, so no value is read back from the
    GPU: selecting by a mask waits for the GPU to count the selected entries."""
    return torch.where(keep, values, 0.0).sum() / keep.sum().clamp_min(1)
