"""Keypoints drawn onto video frames with Pillow (no OpenCV): one colour per keypoint, a filled
disc where the model is confident, a ring where its likelihood is below the threshold."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont


def keypoint_colours(num_keypoints: int, colormap: str = "cool") -> np.ndarray:
    """(K, 3) uint8 RGB colours spread over a matplotlib colormap (``eval.colormap``)."""
    samples = colormaps[colormap](np.linspace(0, 1, max(num_keypoints, 1)))[:num_keypoints, :3]
    return np.round(samples * 255).astype(np.uint8)


def marker_radius(height: int, width: int) -> int:
    """Big enough to see on a 128-pixel frame, small enough not to hide the body part on a large one."""
    return max(3, round(min(height, width) / 100))


def draw_keypoints(
    image: np.ndarray,
    points: np.ndarray,
    likelihood: np.ndarray,
    colours: np.ndarray,
    threshold: float,
    text: str | None = None,
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3 uint8) with ``points`` (K, 2, original pixels) drawn: a filled
    disc with a dark edge where ``likelihood`` >= ``threshold``, a ring of the same colour below it.
    NaN points are skipped. ``text`` goes in the top-left corner."""
    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    r = marker_radius(*image.shape[:2])
    for (x, y), p, colour in zip(points, likelihood, colours):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        box = (x - r, y - r, x + r, y + r)
        colour = tuple(int(c) for c in colour)
        if np.isfinite(p) and p >= threshold:
            draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=1)
        else:
            draw.ellipse(box, outline=colour, width=max(1, r // 2))
    if text:
        size = max(10, image.shape[0] // 16)
        draw.text((3, 2), text, fill=(255, 255, 255), font=ImageFont.load_default(size=size), stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(canvas)
