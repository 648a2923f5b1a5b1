"""Labeled videos: the source video with one model's predicted keypoints drawn on every frame."""

from __future__ import annotations

import os

import pandas as pd

from ..errors import InputError
from ..metrics import keypoint_array
from ..video import open_video, write_video
from .draw import draw_keypoints, keypoint_colours


def make_labeled_video(
    video_path: str | os.PathLike,
    predictions: pd.DataFrame,
    output_path: str | os.PathLike,
    threshold: float = 0.9,
    colormap: str = "cool",
    clip_frames: int | None = None,
    batch_size: int = 32,
) -> int:
    """Write ``output_path`` (H.264 mp4, same size and frame rate as the source): the first
    ``clip_frames`` frames (all when None) with the predictions drawn. Returns the frame count."""
    points, likelihood, names = keypoint_array(predictions)
    colours = keypoint_colours(len(names), colormap)
    with open_video(video_path) as reader:
        info = reader.info
        if len(predictions) != info.num_frames:
            raise InputError(video_path, f"has {info.num_frames} frames but its predictions have {len(predictions)} rows")
        count = info.num_frames if clip_frames is None else min(clip_frames, info.num_frames)

        def frames():
            for indices, batch in reader.iter_batches(batch_size):
                for i, image in zip(indices.tolist(), batch):
                    if i >= count:
                        return
                    yield draw_keypoints(image, points[i], likelihood[i], colours, threshold, text=f"frame {i}")

        write_video(output_path, frames(), info.fps)
    return count
