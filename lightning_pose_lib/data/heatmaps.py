"""Gaussian heatmap targets and subpixel keypoints from predicted heatmaps.

Heatmaps are ``2 ** downsample_factor`` (4) times smaller than the model input; points move
between the two with :func:`~lightning_pose_lib.data.transforms.rescale_points`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIGMA = 1.25  # target width in heatmap pixels (upstream Lightning Pose)
WINDOW = 5  # side of the window used for the subpixel estimate and the confidence (2 * floor(2 sigma) + 1)


def make_heatmaps(points: torch.Tensor, heatmap_hw: tuple[int, int], sigma: float = SIGMA) -> torch.Tensor:
    """Targets (B, K, h, w): a Gaussian at each point (heatmap coordinates), normalised to sum 1.

    A NaN point, or one outside the heatmap, gets an all-zero map, which the supervised loss skips.
    """
    h, w = heatmap_hw
    ys = torch.arange(h, device=points.device, dtype=points.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, device=points.device, dtype=points.dtype).view(1, 1, 1, w)
    x = points[..., 0, None, None]
    y = points[..., 1, None, None]
    maps = torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    maps = torch.where(inside & ~torch.isnan(x) & ~torch.isnan(y), maps, torch.zeros_like(maps))
    total = maps.sum(dim=(-2, -1), keepdim=True)
    return torch.where(total > 0, maps / total.clamp_min(1e-12), maps)


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) logits -> per-map probability distributions."""
    b, k, h, w = logits.shape
    return F.softmax(logits.reshape(b, k, h * w).float(), dim=-1).reshape(b, k, h, w)


def heatmaps_to_keypoints(heatmaps: torch.Tensor, window: int = WINDOW) -> tuple[torch.Tensor, torch.Tensor]:
    """Subpixel keypoints (B, K, 2) in heatmap coordinates and likelihoods (B, K) in [0, 1].

    The keypoint is the centre of mass of the heatmap inside a ``window`` x ``window`` square around
    its maximum (a local soft-argmax: subpixel, and not pulled towards a second mode); the likelihood
    is the probability mass inside that square.
    """
    b, k, h, w = heatmaps.shape
    r = window // 2
    flat_index = heatmaps.reshape(b, k, -1).argmax(dim=-1)
    peak_y = torch.div(flat_index, w, rounding_mode="floor")
    peak_x = flat_index % w
    offsets = torch.arange(-r, r + 1, device=heatmaps.device)
    wy = peak_y[..., None] + offsets  # (B, K, window)
    wx = peak_x[..., None] + offsets
    valid_y = (wy >= 0) & (wy < h)
    valid_x = (wx >= 0) & (wx < w)
    maps = heatmaps.reshape(b * k, h, w)
    gy = wy.clamp(0, h - 1).reshape(b * k, window, 1).expand(-1, -1, window)
    gx = wx.clamp(0, w - 1).reshape(b * k, 1, window).expand(-1, window, -1)
    patch = maps[torch.arange(b * k, device=heatmaps.device)[:, None, None], gy, gx].reshape(b, k, window, window)
    mask = (valid_y[..., :, None] & valid_x[..., None, :]).to(patch.dtype)
    patch = patch.float() * mask
    mass = patch.sum(dim=(-2, -1))
    denom = mass.clamp_min(1e-12)
    x = (patch.sum(dim=-2) * wx.float()).sum(-1) / denom
    y = (patch.sum(dim=-1) * wy.float()).sum(-1) / denom
    return torch.stack([x, y], dim=-1), mass.clamp(0.0, 1.0)
