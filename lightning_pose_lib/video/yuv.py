"""YUV 4:2:0 to RGB on the device the frames go to.

Converting to RGB on the CPU (FFmpeg's swscale) costs more than decoding itself: on the lent GPU
machine one core decodes this project's mouse video at 958 frames/s but delivers only 370 frames/s
as RGB (docs/benchmarks.md). So when frames are bound for a GPU, the CPU decoder hands over the raw
planes (half the bytes of RGB) and this module converts them there, as swscale would: the frame's
colour matrix (BT.601 unless tagged BT.709 or BT.2020), limited ("TV") range unless tagged full,
and each chroma sample repeated over its 2 x 2 pixels.
"""

from __future__ import annotations

import torch

# (Kr, Kb) of each colour matrix, by FFmpeg's AVColorSpace number; anything else is BT.601 (swscale's default)
_MATRICES = {1: (0.2126, 0.0722), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
_BT601 = (0.299, 0.114)
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def plane_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """(rows, columns) of the luma plane and of the two chroma planes of one 4:2:0 frame."""
    chroma = ((height + 1) // 2, (width + 1) // 2)
    return [(height, width), chroma, chroma]


def frame_bytes(height: int, width: int) -> int:
    """Bytes of one 4:2:0 frame's three planes."""
    return sum(h * w for h, w in plane_shapes(height, width))


def yuv420_to_rgb(planes: torch.Tensor, height: int, width: int, colorspace: int = 2, full_range: bool = False) -> torch.Tensor:
    """uint8 frames (N, :func:`frame_bytes`), each the luma plane then the two chroma planes, row
    by row without padding -> uint8 RGB (N, height, width, 3) on the same device."""
    (_, _), (ch, cw), _ = plane_shapes(height, width)
    n = len(planes)
    y = planes[:, : height * width].view(n, height, width).float()
    chroma = planes[:, height * width :].view(n, 2, ch, cw).float()
    chroma = chroma.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, :, :height, :width]
    if full_range:
        y, cb, cr = y, chroma[:, 0] - 128.0, chroma[:, 1] - 128.0
    else:  # luma 16..235 and chroma 16..240 stretched to the full 0..255
        y, cb, cr = (y - 16.0) * (255.0 / 219.0), (chroma[:, 0] - 128.0) * (255.0 / 224.0), (chroma[:, 1] - 128.0) * (255.0 / 224.0)
    kr, kb = _MATRICES.get(colorspace, _BT601)
    kg = 1.0 - kr - kb
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = y - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    return torch.stack([r, g, b], dim=-1).round_().clamp_(0, 255).to(torch.uint8)
