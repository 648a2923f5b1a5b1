"""Write RGB frames as an H.264 mp4 that every reader backend (and most players) can decode."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import av
import numpy as np

from lightning_pose_lib.io import atomic_path


def _check_frame(image: np.ndarray, expected_shape: tuple[int, ...] | None) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"frames must be uint8 arrays of shape (H, W, 3), got {image.dtype} {image.shape}")
    if expected_shape is None and (image.shape[0] % 2 or image.shape[1] % 2):
        # yuv420p stores chroma at half resolution in both directions.
        raise ValueError(f"H.264 yuv420p needs an even height and width, got {image.shape[:2]}")
    if expected_shape is not None and image.shape != expected_shape:
        raise ValueError(f"all frames must have the same shape: {image.shape} after {expected_shape}")


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int = 18,
    gop: int | None = None,
) -> None:
    """Encode uint8 (H, W, 3) RGB ``frames`` to ``path``: libx264, yuv420p, mp4, constant frame rate.

    ``crf`` is x264's quality (18 visually lossless, 23 x264's default; 0 is lossless but switches to
    the High 4:4:4 Predictive profile, which hardware decoders such as NVDEC do not support). ``gop`` is
    the maximum keyframe interval (x264's default, 250, when None). The file appears only once it is
    complete.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    # NTSC-style rates such as 30000/1001 survive; a plain float would become a huge fraction.
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = None
            shape = None
            for n, image in enumerate(frames):
                image = np.asarray(image)
                _check_frame(image, shape)
                if stream is None:
                    shape = image.shape
                    stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf)})
                    stream.height, stream.width = shape[0], shape[1]
                    stream.pix_fmt = "yuv420p"
                    if gop is not None:
                        stream.codec_context.gop_size = gop
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                # Explicit timestamps make the rate constant; the mp4 muxer also rejects pts=None.
                frame.pts = n
                frame.time_base = 1 / rate
                container.mux(stream.encode(frame))
            if stream is None:
                raise ValueError("no frames to write")
            container.mux(stream.encode())  # flush the frames the encoder still holds (B-frames)
