"""Augmentation of labeled batches on the training device, without a host round trip.

Images are float (B, 3, H, W) in [0, 1] at the model size and keypoints (B, K, 2) in the same
pixels (pixel centres at integers). Geometric transforms move the keypoints; a keypoint pushed out
of the frame becomes NaN and is then skipped by the supervised loss.

The "dlc" pipeline is in the spirit of DeepLabCut's default imgaug pipeline, which upstream
Lightning Pose uses: each transform is applied to a random subset of the batch. All random numbers
of a batch are drawn in one call on the images' device, and every transform runs on the whole
batch, keeping the untouched samples as they were; nothing depends on a value read back from the
GPU and no tensor is made from host data, so the whole training step can be captured as a CUDA
graph (:mod:`lightning_pose_lib.models.cuda_graphs`). (kornia's ``AugmentationSequential`` read
values back several times a batch, and each read made the CPU wait for all queued GPU work, so
loading the next batch could not overlap with the step before it.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import filter2d
from torch import nn

AFFINE_P, MAX_DEGREES, SCALE, TRANSLATE = 0.4, 25.0, (0.85, 1.15), 0.05  # translate: fraction of the size
BLUR_P, BLUR_KERNEL, BLUR_MAX_ANGLE, BLUR_MAX_DIRECTION = 0.5, 5, 90.0, 0.5
COLOR_P, BRIGHTNESS, CONTRAST = 0.5, 0.25, 0.25  # factors in [0.75, 1.25]
NOISE_P, NOISE_STD = 0.3, 0.03
ERASE_P, ERASE_AREA, ERASE_RATIO = 0.3, (0.005, 0.02), (0.5, 2.0)  # area: fraction of the image; ratio: width / height

# The uniform numbers drawn per sample, by use.
DRAWS = ("affine", "angle", "scale", "tx", "ty", "blur", "blur_angle", "blur_direction", "color", "brightness", "contrast",
         "noise", "erase", "erase_area", "erase_ratio", "erase_x", "erase_y")


class Augmentation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        if name not in ("none", "dlc"):
            raise ValueError(f"unknown augmentation {name!r} (known: none, dlc)")
        self.name = name

    @torch.no_grad()
    def forward(self, images: torch.Tensor, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W), or (B, T, 3, H, W) context frames that all get the same transform;
        keypoints (B, K, 2) of the (centre) frame."""
        if self.name == "none":
            return images, keypoints
        shape, (h, w) = images.shape, images.shape[-2:]
        u = dict(zip(DRAWS, torch.rand(len(DRAWS), shape[0], device=images.device)))
        repeats = shape[1] if images.ndim == 5 else 1
        x = images.reshape(-1, *shape[-3:])

        def per_frame(t: torch.Tensor) -> torch.Tensor:  # one value per frame from one per sample
            return t.repeat_interleave(repeats, dim=0) if repeats > 1 else t

        def chosen(name: str, p: float) -> torch.Tensor:
            return per_frame(u[name] < p).view(-1, 1, 1, 1)

        affine = torch.where((u["affine"] < AFFINE_P)[:, None, None], affine_matrices(u, h, w), torch.eye(3, device=x.device))
        x = torch.where(chosen("affine", AFFINE_P), warp(x, per_frame(affine)), x)
        points = torch.einsum("bij,bkj->bki", affine[:, :2, :2], keypoints) + affine[:, None, :2, 2]

        # As kornia's RandomMotionBlur (the previous pipeline): kernels rotated with nearest
        # sampling, zeros beyond the image's border.
        kernels = motion_kernels(BLUR_KERNEL, per_frame(spread(u["blur_angle"], BLUR_MAX_ANGLE)), per_frame(spread(u["blur_direction"], BLUR_MAX_DIRECTION)))
        x = torch.where(chosen("blur", BLUR_P), filter2d(x, kernels, border_type="constant"), x)

        # Brightness and contrast as torchvision (and kornia's ColorJitter) define them: brightness
        # multiplies, contrast scales about the image's mean grey.
        brightness = per_frame(1 + spread(u["brightness"], BRIGHTNESS)).view(-1, 1, 1, 1)
        contrast = per_frame(1 + spread(u["contrast"], CONTRAST)).view(-1, 1, 1, 1)
        brighter = (x * brightness).clamp(0.0, 1.0)
        grey = brighter.mean(dim=(1, 2, 3), keepdim=True)
        x = torch.where(chosen("color", COLOR_P), ((brighter - grey) * contrast + grey).clamp(0.0, 1.0), x)

        x = torch.where(chosen("noise", NOISE_P), x + NOISE_STD * torch.randn_like(x), x)  # new noise for each frame
        x = torch.where(chosen("erase", ERASE_P) & per_frame(erase_masks(u, h, w)), 0.0, x)

        points = torch.where((outside_frame(points, h, w) | torch.isnan(keypoints).any(-1))[..., None], float("nan"), points)
        return x.clamp(0.0, 1.0).reshape(shape), points


def outside_frame(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(..., K) True where keypoints (..., K, 2) lie beyond the edges of an h x w frame."""
    return (points[..., 0] < -0.5) | (points[..., 0] > w - 0.5) | (points[..., 1] < -0.5) | (points[..., 1] > h - 0.5)


def spread(u: torch.Tensor, half_width: float) -> torch.Tensor:
    """Uniform numbers in [0, 1) mapped to [-half_width, half_width)."""
    return (2 * u - 1) * half_width


def affine_matrices(u: dict, h: int, w: int) -> torch.Tensor:
    """(B, 3, 3) maps of pixel coordinates from input to output: rotation by up to ``MAX_DEGREES``,
    scale in ``SCALE``, both about the image centre, then translation by up to ``TRANSLATE`` of the
    size."""
    angle = torch.deg2rad(spread(u["angle"], MAX_DEGREES))
    scale = SCALE[0] + u["scale"] * (SCALE[1] - SCALE[0])
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    cx, cy = (w - 1) / 2, (h - 1) / 2
    tx, ty = spread(u["tx"], TRANSLATE * w), spread(u["ty"], TRANSLATE * h)
    zeros, ones = torch.zeros_like(cos), torch.ones_like(cos)
    return torch.stack([
        torch.stack([cos, -sin, cx - cos * cx + sin * cy + tx], -1),
        torch.stack([sin, cos, cy - sin * cx - cos * cy + ty], -1),
        torch.stack([zeros, zeros, ones], -1),
    ], dim=1)


def warp(images: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) moved by the pixel maps ``forward`` (N, 3, 3): bilinear, zeros outside."""
    n, c, h, w = images.shape
    # grid_sample reads, for each output pixel, the input at normalised coordinates (pixel edges at
    # -1 and 1, align_corners=False: pixel = scale * normalised + centre), so theta is
    # forward^-1 conjugated by that map, written out with the sizes as numbers (no host tensors).
    # Inverted in closed form: torch.linalg.inv checks its result on the host, a GPU stall.
    m = invert_affine(forward)
    scale, centre = (w / 2.0, h / 2.0), ((w - 1) / 2.0, (h - 1) / 2.0)
    theta = torch.stack([
        torch.stack([
            m[:, i, 0] * (scale[0] / scale[i]),
            m[:, i, 1] * (scale[1] / scale[i]),
            (m[:, i, 0] * centre[0] + m[:, i, 1] * centre[1] + m[:, i, 2] - centre[i]) / scale[i],
        ], -1)
        for i in range(2)
    ], 1)
    grid = F.affine_grid(theta.to(images.dtype), [n, c, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def motion_kernels(size: int, angle: torch.Tensor, direction: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """(N, size, size) motion-blur kernels, as ``kornia.filters.get_motion_kernel2d`` makes them: a
    line through the centre weighted linearly by ``direction`` in [-1, 1] (0: evenly), rotated
    counterclockwise by ``angle`` degrees (``mode`` "nearest" or "bilinear" sampling, zeros
    outside), normalised to sum 1. Made on the device alone: kornia's nearest rotation computes its
    sources on the host, and its bilinear one builds matrices from host tensors."""
    weight = (direction.clamp(-1.0, 1.0) + 1.0) / 2.0
    steps = torch.arange(size, device=angle.device, dtype=angle.dtype)
    line = weight[:, None] + ((1 - 2 * weight) / (size - 1))[:, None] * steps  # (N, size)
    kernel = F.pad(line[:, None, None, :], [0, 0, size // 2, size // 2])  # (N, 1, size, size)
    # With align_corners=True the square kernel's normalised coordinates are its pixel offsets from
    # the centre over a common scale, so the rotation needs no rescaling.
    radians = torch.deg2rad(angle)
    cos, sin, zeros = torch.cos(radians), torch.sin(radians), torch.zeros_like(radians)
    theta = torch.stack([torch.stack([cos, -sin, zeros], -1), torch.stack([sin, cos, zeros], -1)], 1)
    grid = F.affine_grid(theta, list(kernel.shape), align_corners=True)
    kernel = F.grid_sample(kernel, grid, mode=mode, padding_mode="zeros", align_corners=True)[:, 0]
    return kernel / kernel.sum(dim=(1, 2), keepdim=True)


def invert_affine(m: torch.Tensor) -> torch.Tensor:
    """Inverse of affine maps (N, 3, 3) (last row 0, 0, 1)."""
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    det = a * d - b * c
    linear = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], 1) / det[:, None, None]
    offset = -torch.einsum("nij,nj->ni", linear, m[:, :2, 2])
    bottom = m[:, 2:]  # (0, 0, 1)
    return torch.cat([torch.cat([linear, offset[..., None]], -1), bottom], 1)


def erase_masks(u: dict, h: int, w: int) -> torch.Tensor:
    """(B, 1, H, W) True inside one rectangle per sample covering a fraction in ``ERASE_AREA`` of the
    image, aspect ratio in ``ERASE_RATIO`` (log-uniform), placed uniformly inside the image."""
    area = (ERASE_AREA[0] + u["erase_area"] * (ERASE_AREA[1] - ERASE_AREA[0])) * h * w
    low, high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    ratio = torch.exp(low + u["erase_ratio"] * (high - low))
    width, height = torch.sqrt(area * ratio).clamp(1.0, w), torch.sqrt(area / ratio).clamp(1.0, h)
    left, top = u["erase_x"] * (w - width), u["erase_y"] * (h - height)
    xs = torch.arange(w, device=area.device, dtype=area.dtype)
    ys = torch.arange(h, device=area.device, dtype=area.dtype)
    inside_x = (xs >= left[:, None]) & (xs < (left + width)[:, None])  # (B, W)
    inside_y = (ys >= top[:, None]) & (ys < (top + height)[:, None])  # (B, H)
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]
