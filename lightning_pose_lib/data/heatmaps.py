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

    The keypoint is the maximum refined by fitting a Gaussian through it and its four neighbours
    (a parabola in log space; exact for Gaussian blobs, and not pulled towards a second mode as a
    global soft-argmax is). The likelihood is the probability mass in a ``window`` x ``window``
    square around the maximum, zero-padded at the borders.
    """
    b, k, h, w = heatmaps.shape
    maps = heatmaps.float().reshape(b * k, h, w)
    flat_index = maps.reshape(b * k, -1).argmax(dim=-1)
    py = torch.div(flat_index, w, rounding_mode="floor")
    px = flat_index % w
    rows = torch.arange(b * k, device=heatmaps.device)
    log = torch.log(maps.clamp_min(1e-12))

    def refine(center, before, after, pos, size):
        curvature = before - 2 * center + after
        step = 0.5 * (before - after) / torch.where(curvature < 0, curvature, torch.full_like(curvature, -1.0))
        inside = (pos > 0) & (pos < size - 1) & (curvature < 0)
        return pos.float() + torch.where(inside, step.clamp(-1.0, 1.0), torch.zeros_like(step))

    center = log[rows, py, px]
    x = refine(center, log[rows, py, (px - 1).clamp(min=0)], log[rows, py, (px + 1).clamp(max=w - 1)], px, w)
    y = refine(center, log[rows, (py - 1).clamp(min=0), px], log[rows, (py + 1).clamp(max=h - 1), px], py, h)

    # Window mass as a box filter of the map, read at the peak (zero padding at the borders).
    r = window // 2
    mass = F.avg_pool2d(maps[:, None], window, stride=1, padding=r, count_include_pad=True)[:, 0] * window * window
    likelihood = mass[rows, py, px].clamp(0.0, 1.0)
    return torch.stack([x, y], dim=-1).reshape(b, k, 2), likelihood.reshape(b, k)
