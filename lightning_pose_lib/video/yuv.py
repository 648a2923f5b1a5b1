"""YUV 4:2:0 frames on the device they go to, and their conversion to RGB or to model input.

Converting to RGB on the CPU (FFmpeg's swscale) costs more than decoding itself: on the lent GPU
machine one core decodes this project's mouse video at 958 frames/s but delivers only 370 frames/s
as RGB (docs/benchmarks.md). So when frames are bound for a GPU, the CPU decoder hands over the raw
planes (half the bytes of RGB) and they are converted there, as swscale would: the frame's colour
matrix (BT.601 unless tagged BT.709 or BT.2020), limited ("TV") range unless tagged full.

For the model, the planes are resized first and converted at the model's size: both steps are
linear, so the order does not matter, and the GPU then converts a third of the pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


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


@dataclass
class YUV420Frames:
    """A batch of decoded 4:2:0 frames: ``planes`` uint8 (N, :func:`frame_bytes`), each row the
    luma plane then the two chroma planes, row by row without padding."""

    planes: torch.Tensor
    height: int
    width: int
    colorspace: int = 2  # FFmpeg's AVColorSpace (2: unspecified)
    full_range: bool = False

    def __len__(self) -> int:
        return len(self.planes)

    def rgb(self) -> torch.Tensor:
        import torch

        """uint8 RGB (N, height, width, 3), each chroma sample repeated over its 2 x 2 pixels."""
        luma, chroma = self._planes()
        chroma = chroma.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, :, : self.height, : self.width]
        rgb = self._to_rgb(torch.cat([luma, chroma], dim=1))
        return rgb.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def model_input(self, size_hw: tuple[int, int]) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        """float (N, 3, h, w) in [0, 1] at ``size_hw``: the planes resized as
        :func:`lightning_pose_lib.data.transforms.to_model_input` resizes RGB, then converted."""
        luma, chroma = self._planes()
        resize = lambda x: F.interpolate(x, size=tuple(size_hw), mode="bilinear", antialias=True, align_corners=False)  # noqa: E731
        rgb = self._to_rgb(torch.cat([resize(luma), resize(chroma)], dim=1))
        return rgb.div_(255.0).clamp_(0.0, 1.0)

    def _planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """float luma (N, 1, H, W) and chroma (N, 2, H/2, W/2)."""
        n, (_, (ch, cw), _) = len(self.planes), plane_shapes(self.height, self.width)
        split = self.height * self.width
        return self.planes[:, :split].view(n, 1, self.height, self.width).float(), self.planes[:, split:].view(n, 2, ch, cw).float()

    def _to_rgb(self, yuv: torch.Tensor) -> torch.Tensor:
        import torch

        """float Y, Cb, Cr channels (N, 3, H, W) -> float R, G, B in 0..255 (not clamped). A matrix
        product, not a 1x1 convolution: under cudnn.benchmark (prediction sets it) every new batch
        size, such as each video's last batch, would autotune the convolution again."""
        matrix, bias = _conversion(self.colorspace, self.full_range, yuv.device)
        return torch.einsum("rc,nchw->nrhw", matrix, yuv).add_(bias)


@functools.lru_cache(maxsize=None)
def _conversion(colorspace: int, full_range: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour matrix (3, 3) and its offset (3, 1, 1), made once per device (copying them there
    each batch would wait for the device)."""
    import torch

    kr, kb = _MATRICES.get(colorspace, _BT601)
    kg = 1.0 - kr - kb
    if full_range:
        (y, c), offset = (1.0, 1.0), (0.0, 128.0)
    else:  # luma 16..235 and chroma 16..240 stretched to the full 0..255
        (y, c), offset = (255.0 / 219.0, 255.0 / 224.0), (16.0, 128.0)
    matrix = torch.tensor(
        [
            [y, 0.0, 2.0 * (1.0 - kr) * c],
            [y, -2.0 * kb * (1.0 - kb) / kg * c, -2.0 * kr * (1.0 - kr) / kg * c],
            [y, 2.0 * (1.0 - kb) * c, 0.0],
        ]
    )
    bias = -(matrix @ torch.tensor([offset[0], offset[1], offset[1]]))
    matrix, bias = matrix.to(device), bias[:, None, None].to(device)
    if device.type == "cuda":  # other threads' streams will read them
        torch.cuda.current_stream(device).synchronize()
    return matrix, bias
