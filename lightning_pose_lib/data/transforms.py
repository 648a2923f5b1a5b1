"""Image and coordinate transforms shared by training, labeled-frame prediction and video prediction.

Coordinates everywhere are in pixels with pixel centres at integers (x to the right, y down). This
module is the one place that maps points between image sizes (original frame, model input, heatmap).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

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
    """uint8 frames (N, H, W, 3) (numpy or tensor) -> float (N, 3, h, w) in [0, 1] at the model size.

    Resizing is bilinear with antialiasing, done on ``device``. On a GPU it runs as two matrix
    products with the same weights (see :func:`resize_by_matmul`), which tensor cores make nearly
    free. ImageNet normalisation happens inside the model, so augmentation can work on [0, 1] images.
    """
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.array(frames, copy=not frames.flags.writeable, order="C"))
    x = frames.to(device=device, non_blocking=True)
    if tuple(x.shape[1:3]) == tuple(size_hw):
        x = x.permute(0, 3, 1, 2).float()
    elif x.is_cuda:
        x = resize_by_matmul(x.half(), size_hw).float()  # fp16 holds 0..255 exactly; within 0.1 grey level
    else:
        x = F.interpolate(x.permute(0, 3, 1, 2).float(), size=tuple(size_hw), mode="bilinear", antialias=True, align_corners=False)
    return x.div_(255.0).clamp_(0.0, 1.0)


def resize_by_matmul(images: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """(N, H, W, 3) images -> (N, 3, h, w) in channels-last memory (what the convolutions read):
    ``F.interpolate(..., mode="bilinear", antialias=True)`` written as one matrix product per axis
    (the interpolation is separable), in the images' dtype."""
    n, height, width, _ = images.shape
    h, w = size_hw
    rows = _resize_weights(height, h, images.device, images.dtype)  # (h, H)
    cols = _resize_weights(width, w, images.device, images.dtype)  # (w, W)
    with torch.autocast(images.device.type, enabled=False):  # bf16 would cost a grey level
        x = torch.matmul(rows, images.reshape(n, height, width * 3)).view(n, h, width, 3)  # along the height
        x = torch.matmul(x.transpose(2, 3), cols.T)  # (N, h, 3, w): along the width
    return x.transpose(2, 3).contiguous().permute(0, 3, 1, 2)  # (N, h, w, 3) memory seen as (N, 3, h, w)


@functools.lru_cache(maxsize=64)
def _resize_weights(size_in: int, size_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(size_out, size_in) matrix of antialiased bilinear resizing along one axis: torch's own
    interpolation applied to every unit vector (it is separable, so two of these make the 2-D one)."""
    # size_in images of 1 x size_in (along the width: torch 2.x gets 1-pixel-wide images wrong)
    unit = torch.eye(size_in, dtype=torch.float64)[:, None, None, :]
    weights = F.interpolate(unit, size=(1, size_out), mode="bilinear", antialias=True, align_corners=False)
    return weights[:, 0, 0, :].T.contiguous().to(device=device, dtype=dtype)


def to_model_uint8(frames, size_hw: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """:func:`to_model_input` kept as uint8 (N, 3, h, w): a quarter of the memory for frames that
    are cached or queued before the model sees them (divide by 255 to use them)."""
    return to_model_input(frames, size_hw, device).mul_(255).round_().to(torch.uint8)
