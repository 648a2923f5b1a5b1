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


@register_loss("heatmap_kl")
class HeatmapKL(nn.Module):
    """Mean over labeled keypoints of KL(target || predicted heatmap), each map a distribution.

    Its gradient with respect to the logits is the predicted minus the target map: unlike the MSE
    of the probabilities, it does not fade where the prediction is small.
    """

    def forward(self, out: dict) -> torch.Tensor:
        pred, target = out["heatmaps"].float(), out["target_heatmaps"]
        per_map = kl_divergence(target, pred).sum(dim=(-2, -1))
        return masked_mean(per_map, target.sum(dim=(-2, -1)) > 0)


@register_loss("heatmap_js")
class HeatmapJS(nn.Module):
    """Mean over labeled keypoints of the Jensen-Shannon divergence of target and prediction."""

    def forward(self, out: dict) -> torch.Tensor:
        pred, target = out["heatmaps"].float(), out["target_heatmaps"]
        middle = (pred + target) / 2
        per_map = (kl_divergence(target, middle) + kl_divergence(pred, middle)).sum(dim=(-2, -1)) / 2
        return masked_mean(per_map, target.sum(dim=(-2, -1)) > 0)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Pointwise terms of KL(p || q): p log(p / q), 0 where p is 0; ``eps`` keeps log q finite."""
    return torch.where(p > 0, p * (torch.log(p.clamp_min(eps)) - torch.log(q + eps)), 0.0)


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
