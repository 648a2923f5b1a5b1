"""Plots comparing the models of a dataset. Every figure has a title, axes with units and a
legend, and is saved as PNG (also readable outside the report)."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ..io import atomic_path

PIXELS = "px, original frame"


def save(fig, path: str | os.PathLike | None, dpi: int = 110):
    """Write ``fig`` to ``path`` and close it; with no path, hand the figure back (tests look at it)."""
    if path is None:
        return fig
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return None


def model_colours(models) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(models) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize="large", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def pixel_error_per_keypoint(per_keypoint: dict[str, dict[str, dict[str, float]]], path=None):
    """Grouped bars: mean pixel error of each keypoint, one bar per model, one panel per held-out set.

    ``per_keypoint[set][model][keypoint]`` is a mean pixel error."""
    sets = [s for s in ("validation", "test") if s in per_keypoint] or list(per_keypoint)
    n_keypoints = max((len(next(iter(per_keypoint[s].values()), {})) for s in sets), default=1)
    fig, axes = plt.subplots(len(sets) or 1, 1, figsize=(max(7, 0.55 * n_keypoints * 1.2 + 3), 3.6 * max(len(sets), 1)), layout="constrained", squeeze=False)
    for ax, name in zip(axes[:, 0], sets):
        table = pd.DataFrame(per_keypoint[name])  # keypoints x models
        colours = model_colours(list(table.columns))
        table.plot.bar(ax=ax, width=0.8, color=[colours[m] for m in table.columns])
        ax.set_title(f"Pixel error per keypoint on {name} frames (mean over frames)")
        ax.set_xlabel("keypoint")
        ax.set_ylabel(f"pixel error ({PIXELS})")
        ax.tick_params(axis="x", labelrotation=45)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="model", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    if not sets:
        _empty(axes[0, 0], "no labeled frames outside the training set")
        axes[0, 0].set_title("Pixel error per keypoint")
    return save(fig, path)


def pixel_error_vs_train_frames(table: pd.DataFrame, path=None):
    """Held-out pixel error against the number of training frames: one marker per model (seeds
    and other sweep values), a line through the mean of each variant."""
    column = next((c for c in ("test_pixel_error", "validation_pixel_error") if c in table and table[c].notna().any()), None)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    if column is None:
        _empty(ax, "no held-out pixel error to plot")
    else:
        variants = list(dict.fromkeys(table["variant"]))
        colours = model_colours(variants)
        for variant in variants:
            rows = table[table["variant"] == variant].sort_values("train_frames")
            ax.scatter(rows["train_frames"], rows[column], color=colours[variant], alpha=0.6, s=25)
            mean = rows.groupby("train_frames")[column].agg(["mean", "std"]).reset_index()
            ax.errorbar(mean["train_frames"], mean["mean"], yerr=mean["std"].fillna(0), color=colours[variant],
                        marker="o", capsize=3, label=f"{variant} (mean ± sd over models)")
        if table["train_frames"].nunique() > 1 and table["train_frames"].min() > 0:
            ax.set_xscale("log")  # frame counts of a sweep usually double
            ax.set_xticks(sorted(table["train_frames"].unique()))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(title="variant", fontsize="small")
        ax.grid(alpha=0.3)
    set_name = column.split("_")[0] if column else "held-out"
    ax.set_title(f"Pixel error on {set_name} frames against training frames")
    ax.set_xlabel("labeled frames used for training (count)")
    ax.set_ylabel(f"mean pixel error ({PIXELS})")
    return save(fig, path)


VIDEO_METRIC_LABELS = {
    "temporal_norm": ("Temporal norm", "distance moved since the previous frame (px)"),
    "pca_singleview_error": ("Pose PCA error", "distance to the PCA reconstruction (px)"),
    "pca_multiview_error": ("Multiview consistency (PCA) error", "distance to the PCA reconstruction (px)"),
    "reprojection_error": ("3D reprojection error", "distance to the triangulated point reprojected (px)"),
}


def video_metric_distributions(values: dict[str, dict[str, np.ndarray]], path=None):
    """One panel per video metric: a box per model over every keypoint of every frame of every
    predicted video. ``values[metric][model]`` is a flat array of the metric's values."""
    metrics = [m for m in VIDEO_METRIC_LABELS if m in values]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4.2 * max(len(metrics), 1) + 1.5, 5.6), layout="constrained", squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        models = list(values[metric])
        colours = model_colours(models)
        data = [v[np.isfinite(v)] for v in values[metric].values()]
        keep = [i for i, d in enumerate(data) if len(d)]
        boxes = ax.boxplot([data[i] for i in keep], whis=(5, 95), showfliers=False, showmeans=True, patch_artist=True,
                           meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"})
        for patch, i in zip(boxes["boxes"], keep):
            patch.set_facecolor(colours[models[i]])
            patch.set_alpha(0.7)
        ax.set_xticks(range(1, len(keep) + 1), [models[i] for i in keep], rotation=30, ha="right", fontsize="small")
        title, unit = VIDEO_METRIC_LABELS[metric]
        ax.set_title(f"{title} on videos")
        ax.set_xlabel("model")
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    if metrics:
        # One legend below the panels (they share the models), where it hides no whisker.
        models = list(values[metrics[0]])
        colours = model_colours(models)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m], alpha=0.7) for m in models]
        handles.append(plt.Line2D([], [], marker="D", color="black", markerfacecolor="white", linestyle=""))
        fig.legend(handles, models + ["mean (box: quartiles, whiskers: 5-95 %)"], loc="outside lower center", ncol=min(len(handles), 4), fontsize="small", title="model")
    else:
        _empty(axes[0, 0], "no predicted videos")
        axes[0, 0].set_title("Video metrics")
    return save(fig, path)


def keypoint_trace(traces: dict[str, pd.DataFrame], keypoint: str, video: str, fps: float | None, path=None, thick=()):
    """x, y and likelihood of one keypoint over the frames of one video, one line per model
    (those named in ``thick`` drawn thicker, e.g. an ensemble over its members).
    ``traces[model]`` has columns x, y, likelihood indexed by frame."""
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True, layout="constrained")
    colours = model_colours(list(traces))
    for model, trace in traces.items():
        for ax, coord in zip(axes, ("x", "y", "likelihood")):
            ax.plot(trace.index, trace[coord], color=colours[model], linewidth=2 if model in thick else 1, label=model)
    axes[0].set_ylabel("x (px)")
    axes[1].set_ylabel("y (px, down)")
    axes[1].invert_yaxis()  # image rows grow downwards: up in the plot is up in the frame
    axes[2].set_ylabel("likelihood")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_xlabel("frame" + (f" ({fps:g} frames per second)" if fps else ""))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(title="model", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[0].set_title(f"{video}: keypoint '{keypoint}' over time")
    return save(fig, path)
