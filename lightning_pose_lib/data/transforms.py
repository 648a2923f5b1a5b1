"""Image and coordinate transforms shared by training, labeled-frame prediction and video prediction.

Coordinates everywhere are in pixels with pixel centres at integers (x to the right, y down). This
module is the one place that maps points between image sizes (original frame, model input, heatmap).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..video.yuv import YUV420Frames

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rescale_points(points, from_hw, to_hw):
    """Map (..., 2) x, y points from an image of size ``from_hw`` to one of size ``to_hw``.

    Works on numpy arrays and torch tensors. Sizes are (height, width) pairs, or arrays/tensors of
    them (..., 2) broadcasting against the points' leading dimensions; sizes already on the device
    stay there (no host round trip, which would stall the GPU).
    """

    def height_width(size):
        return (size[..., 0], size[..., 1]) if hasattr(size, "shape") else (float(size[0]), float(size[1]))

    (from_h, from_w), (to_h, to_w) = height_width(from_hw), height_width(to_hw)
    x = (points[..., 0] + 0.5) * (to_w / from_w) - 0.5
    y = (points[..., 1] + 0.5) * (to_h / from_h) - 0.5
    return (torch.stack if isinstance(points, torch.Tensor) else np.stack)([x, y], -1)


def to_model_input(frames, size_hw: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) (numpy or tensor, or :class:`YUV420Frames`) -> float (N, 3, h, w)
    in [0, 1] at the model size.

    Resizing is bilinear with antialiasing, done on ``device`` (the GPU when predicting there: about
    7% of a ResNet-50's time at 256 x 256, docs/benchmarks.md). ImageNet normalisation happens
    inside the model, so augmentation can work on [0, 1] images.
    """
    if isinstance(frames, YUV420Frames):  # resized before conversion: a third of the pixels to convert
        return frames.model_input(size_hw)
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.array(frames, copy=not frames.flags.writeable, order="C"))
    x = frames.to(device=device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(size_hw):
        x = F.interpolate(x, size=tuple(size_hw), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)


def to_model_uint8(frames, size_hw: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """:func:`to_model_input` kept as uint8 (N, 3, h, w): a quarter of the memory for frames that
    are cached or queued before the model sees them (divide by 255 to use them)."""
    return to_model_input(frames, size_hw, device).mul_(255).round_().to(torch.uint8)
