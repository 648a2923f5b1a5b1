"""Unsupervised losses on predictions for unlabeled video frames, in original-frame pixels.

Each takes ``out["keypoints"]`` (C, T, K, 2): C clips of T consecutive frames, and
``out["likelihood"]`` (C, T, K). The training loop multiplies each by its weight
(``1 / (2 exp(log_weight))``) and by the annealing factor.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pca import PosePCA
from .supervised import masked_mean
from .registry import register_loss


def _epsilon_insensitive_mean(errors: torch.Tensor, epsilon) -> torch.Tensor:
    """mean(ReLU(error - epsilon)) over the entries that are not NaN."""
    return masked_mean(torch.relu(errors - epsilon), ~torch.isnan(errors))


@register_loss("temporal")
class TemporalLoss(nn.Module):
    """Jumps of a keypoint between consecutive frames beyond ``epsilon`` pixels (scalar or per
    keypoint). Pairs where either frame's likelihood is below ``prob_threshold`` count as zero."""

    def __init__(self, epsilon=20.0, prob_threshold: float = 0.05, **_):
        super().__init__()
        self.register_buffer("epsilon", torch.as_tensor(epsilon, dtype=torch.float32), persistent=False)  # moves with the model
        self.prob_threshold = prob_threshold

    def forward(self, out: dict) -> torch.Tensor:
        points, likelihood = out["keypoints"].float(), out["likelihood"].float()
        jumps = torch.linalg.norm(points[:, 1:] - points[:, :-1], dim=-1)  # (C, T-1, K)
        confident = (likelihood[:, 1:] >= self.prob_threshold) & (likelihood[:, :-1] >= self.prob_threshold)
        return (torch.relu(jumps - self.epsilon) * confident).mean()


class _PCALoss(nn.Module):
    """Pose PCA reconstruction error beyond the PCA's epsilon, over the keypoints it covers."""

    def __init__(self, pca: PosePCA, **_):
        super().__init__()
        self.pca = pca
        for name, tensor in pca.tensors().items():  # buffers move with the model to its device
            self.register_buffer(name, tensor, persistent=False)

    def forward(self, out: dict) -> torch.Tensor:
        points = out["keypoints"].float()
        tensors = {"mean": self.mean, "basis": self.basis, "index": self.index}
        errors = self.pca.reconstruction_error(points.reshape(-1, *points.shape[-2:]), tensors)
        return _epsilon_insensitive_mean(errors, self.pca.epsilon)


@register_loss("pca_singleview")
class PCASingleviewLoss(_PCALoss):
    pass


@register_loss("pca_multiview")
class PCAMultiviewLoss(_PCALoss):
    pass
