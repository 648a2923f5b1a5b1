"""Unsupervised losses on predictions for unlabeled video frames, in original-frame pixels.

Each takes ``out["keypoints"]`` (C, T, K, 2): C clips of T consecutive frames, and
``out["likelihood"]`` (C, T, K). The training loop multiplies each by its weight
(``1 / (2 exp(log_weight))``) and by the annealing factor.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pca import PosePCA
from .registry import register_loss


def _epsilon_insensitive_mean(errors: torch.Tensor, epsilon) -> torch.Tensor:
    """mean(ReLU(error - epsilon)) over the entries that are not NaN."""
    valid = ~torch.isnan(errors)
    if not valid.any():
        return errors.new_zeros(())
    return torch.relu(errors - epsilon)[valid].mean()


@register_loss("temporal")
class TemporalLoss(nn.Module):
    """Jumps of a keypoint between consecutive frames beyond ``epsilon`` pixels (scalar or per
    keypoint). Pairs where either frame's likelihood is below ``prob_threshold`` count as zero."""

    def __init__(self, epsilon=20.0, prob_threshold: float = 0.05, **_):
        super().__init__()
        self.epsilon, self.prob_threshold = epsilon, prob_threshold

    def forward(self, out: dict) -> torch.Tensor:
        points, likelihood = out["keypoints"].float(), out["likelihood"].float()
        jumps = torch.linalg.norm(points[:, 1:] - points[:, :-1], dim=-1)  # (C, T-1, K)
        eps = torch.as_tensor(self.epsilon, dtype=jumps.dtype, device=jumps.device)
        confident = (likelihood[:, 1:] >= self.prob_threshold) & (likelihood[:, :-1] >= self.prob_threshold)
        return (torch.relu(jumps - eps) * confident).mean()


class _PCALoss(nn.Module):
    """Pose PCA reconstruction error beyond the PCA's epsilon, over the keypoints it covers."""

    def __init__(self, pca: PosePCA, **_):
        super().__init__()
        self.pca = pca

    def forward(self, out: dict) -> torch.Tensor:
        points = out["keypoints"].float()
        errors = self.pca.reconstruction_error(points.reshape(-1, *points.shape[-2:]))
        return _epsilon_insensitive_mean(errors, self.pca.epsilon)


@register_loss("pca_singleview")
class PCASingleviewLoss(_PCALoss):
    pass


@register_loss("pca_multiview")
class PCAMultiviewLoss(_PCALoss):
    pass
