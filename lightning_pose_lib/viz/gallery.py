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
    images = {frame: _image(data_dir, frame) for frame in frames}
    points = {(frame, m): keypoint_array(predictions[m].loc[[frame]])[0][0] for frame in frames for m in models}
    # Each row zooms on its animal: the box around the labels and every model's predictions.
    boxes = {frame: _box([labels.keypoints[row_of[frame]], *(points[frame, m] for m in models)], images[frame].shape) for frame in frames}
    ratios = [(b[3] - b[2]) / (b[1] - b[0]) for b in boxes.values()] or [1.0]
    panel = 3.6
    fig, axes = plt.subplots(
        len(ratios), len(models), figsize=(panel * len(models), panel * sum(ratios) + 0.6 * len(ratios) + 1.4),
        squeeze=False, layout="constrained", gridspec_kw={"height_ratios": ratios},
    )
    for r, frame in enumerate(frames):
        image = images[frame]
        truth = labels.keypoints[row_of[frame]]
        x0, x1, y0, y1 = boxes[frame]
        for c, model in enumerate(models):
            ax = axes[r, c]
            points_ = points[frame, model]
            ax.imshow(image)
            for k in range(labels.num_keypoints):
                if np.isfinite(truth[k]).all() and np.isfinite(points_[k]).all():
                    ax.plot([truth[k, 0], points_[k, 0]], [truth[k, 1], points_[k, 1]], color=colours[k], linewidth=1)
            ax.scatter(truth[:, 0], truth[:, 1], s=40, facecolors="none", edgecolors="white", linewidths=1.2)
            ax.scatter(points_[:, 0], points_[:, 1], s=14, c=colours, edgecolors="black", linewidths=0.4)
            error = errors[model].loc[frame].drop("set").astype(float).mean()
            ax.set_title(f"{model}\nmean error {error:.1f} px", fontsize="small")
            ax.set_xlim(x0 - 0.5, x1 - 0.5)
            ax.set_ylim(y1 - 0.5, y0 - 0.5)
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


def _box(point_sets, shape) -> tuple[int, int, int, int]:
    """x0, x1, y0, y1 of the finite points padded by a margin, inside the image (the whole image
    when there are none): a small animal in a large frame stays visible."""
    height, width = shape[:2]
    points = np.concatenate([np.asarray(p, dtype=float).reshape(-1, 2) for p in point_sets])
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return 0, width, 0, height
    pad = max(16.0, 0.08 * max(height, width))
    (xmin, ymin), (xmax, ymax) = points.min(axis=0) - pad, points.max(axis=0) + pad
    x0, x1 = max(0, int(np.floor(xmin))), min(width, int(np.ceil(xmax)) + 1)
    y0, y1 = max(0, int(np.floor(ymin))), min(height, int(np.ceil(ymax)) + 1)
    return (x0, x1, y0, y1) if x1 > x0 and y1 > y0 else (0, width, 0, height)


def _image(data_dir, image_path: str) -> np.ndarray:
    path = Path(data_dir) / image_path
    if not path.is_file():
        raise InputError(path, "image file not found")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
