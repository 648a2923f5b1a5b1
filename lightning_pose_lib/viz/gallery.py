"""Frame galleries: labeled frames with the ground truth and several models' predictions side by
side, the frames where the models are worst first."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from PIL import Image

from ..data.labels import Labels
from ..errors import InputError
from ..metrics import keypoint_array
from .draw import keypoint_colours
from .plots import save

HELD_OUT = ("validation", "test")


def worst_frames(errors: dict[str, pd.DataFrame], count: int) -> list:
    """Index labels of the ``count`` labeled frames with the largest pixel error (mean over
    keypoints, then over models), taken from the validation and test frames when there are any."""
    per_frame = pd.DataFrame({m: e.drop(columns="set").mean(axis=1) for m, e in errors.items()}).mean(axis=1)
    sets = next(iter(errors.values()))["set"]
    held_out = sets.isin(HELD_OUT)
    if held_out.any():
        per_frame = per_frame[held_out]
    return list(per_frame.dropna().sort_values(ascending=False, kind="stable").index[:count])


def make_gallery(
    data_dir: str | os.PathLike,
    labels: Labels,
    predictions: dict[str, pd.DataFrame],
    errors: dict[str, pd.DataFrame],
    path: str | os.PathLike,
    count: int = 8,
    colormap: str = "cool",
) -> list:
    """One row per frame (worst first), one column per model: the image, the ground truth (white
    rings), each prediction (coloured dots) and a line from label to prediction. Returns the frames."""
    frames = worst_frames(errors, count)
    models = list(predictions)
    colours = keypoint_colours(labels.num_keypoints, colormap) / 255
    row_of = {p: i for i, p in enumerate(labels.image_paths)}
    rows = max(len(frames), 1)
    first = _image(data_dir, frames[0]) if frames else np.zeros((64, 64, 3), np.uint8)
    aspect = first.shape[0] / first.shape[1]
    panel = 3.6
    fig, axes = plt.subplots(rows, len(models), figsize=(panel * len(models), panel * aspect * rows + 1.4), squeeze=False, layout="constrained")
    for r, frame in enumerate(frames):
        image = _image(data_dir, frame)
        truth = labels.keypoints[row_of[frame]]
        for c, model in enumerate(models):
            ax = axes[r, c]
            points, _, _ = keypoint_array(predictions[model].loc[[frame]])
            points = points[0]
            ax.imshow(image)
            for k in range(labels.num_keypoints):
                if np.isfinite(truth[k]).all() and np.isfinite(points[k]).all():
                    ax.plot([truth[k, 0], points[k, 0]], [truth[k, 1], points[k, 1]], color=colours[k], linewidth=1)
            ax.scatter(truth[:, 0], truth[:, 1], s=40, facecolors="none", edgecolors="white", linewidths=1.2)
            ax.scatter(points[:, 0], points[:, 1], s=14, c=colours, edgecolors="black", linewidths=0.4)
            error = errors[model].loc[frame].drop("set").astype(float).mean()
            ax.set_title(f"{model}\nmean error {error:.1f} px", fontsize="small")
            # The frame's own extent: predictions far outside it must not shrink the image.
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                name = Path(frame)
                ax.set_ylabel(f"{name.parent.name}/\n{name.name}\n({errors[model].loc[frame, 'set']})", fontsize="small")
    if not frames:
        for ax in axes[0]:
            ax.axis("off")
        axes[0, 0].text(0.5, 0.5, "no labeled frames with errors", ha="center", va="center", transform=axes[0, 0].transAxes)
    handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black", label="ground truth")]
    handles += [Line2D([], [], marker="o", linestyle="", color=colours[k], markeredgecolor="black", label=name) for k, name in enumerate(labels.keypoint_names)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2 * len(models) + 1), fontsize="small", title="coloured dots: predictions by keypoint; lines join label and prediction")
    fig.suptitle(f"Labeled frames with the largest pixel error, worst first ({len(models)} model{'s' * (len(models) > 1)})")
    save(fig, path, dpi=100)
    return frames


def _image(data_dir, image_path: str) -> np.ndarray:
    path = Path(data_dir) / image_path
    if not path.is_file():
        raise InputError(path, "image file not found")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
