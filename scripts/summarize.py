#!/usr/bin/env python
"""Compare the models of a dataset: ``summarize.py --output-dir DIR MODEL_DIR [MODEL_DIR ...]``.

Reads each model's ``metrics/summary.json`` and metric tables (written by evaluate.py) and writes
``summary.csv`` (one row per model: variant, sweep values, seed, training frames, and the mean and
spread of every metric; plus the mean-pose baseline) and the plots under ``plots/``:
``pixel_error_per_keypoint.png``, ``video_metrics.png`` (temporal norm and PCA error
distributions), ``pixel_error_vs_train_frames.png`` (when the models use different numbers of
training frames) and ``traces/<video>.png`` (one keypoint over time, several models). A rule
also draws ``traces/<video>_ensemble_<name>.png`` (an ensemble's members, average and smoothed
keypoint).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_pose_lib import viz  # noqa: F401  (selects the Agg backend)
from lightning_pose_lib.cli import run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.io import atomic_path
from lightning_pose_lib.metrics import FAILED_FACTOR_OF_SIBLINGS, VIDEO_METRICS, failed_among_siblings, is_metric_file, keypoint_array, read_metric
from lightning_pose_lib.viz import plots

SET_ORDER = ("train", "validation", "test", "unused")


def _metric_order(column: str) -> tuple:
    """Pixel error before the PCA errors, sets in split order, then the video metrics; mean first."""
    base = column.removesuffix("_median").removesuffix("_std")
    where, _, metric = base.partition("_")
    stat = 0 if column == base else (1 if column.endswith("_median") else 2)
    metrics = ("pixel_error", *VIDEO_METRICS)
    group = SET_ORDER.index(where) if where in SET_ORDER else len(SET_ORDER)
    return (group, metrics.index(metric) if metric in metrics else len(metrics), metric, stat)


def summary_table(summaries: dict[str, dict], models: dict[str, dict]) -> pd.DataFrame:
    """One row per model (variant, sweep values, seed, training frames, metrics), then the mean-pose
    baseline; metric columns are ``<set or video>_<metric>`` (mean), ``_median`` and ``_std``."""
    rows = []
    for model_id, summary in summaries.items():
        scalars = {k: v for k, v in summary.items() if not isinstance(v, dict) and not k.startswith("baseline_")}
        rows.append({"model": model_id, **models.get(model_id, {}), **scalars})
    first = next(iter(summaries.values()))
    baseline = {k.removeprefix("baseline_"): v for k, v in first.items() if k.startswith("baseline_")}
    rows.append({"model": "mean_pose_baseline", "variant": "mean_pose_baseline", **baseline})
    table = pd.DataFrame(rows)
    for column in ("seed", "train_frames"):  # whole numbers, empty for the baseline row
        if column in table:
            table[column] = table[column].astype("Int64")
    info = [c for c in table.columns if c in ("model", "variant") or not _is_metric(c)]
    info = ["model", "variant", *[c for c in info if c not in ("model", "variant", "seed", "train_frames")], "seed", "train_frames"]
    info = [c for c in info if c in table.columns]
    metrics = sorted((c for c in table.columns if c not in info), key=_metric_order)
    table = table[info + metrics]
    if "validation_pixel_error" in table:
        cell = [c for c in info if c not in ("model", "seed")]
        siblings = table[cell].map(str).agg("|".join, axis=1)
        failed = failed_among_siblings(table["validation_pixel_error"], siblings).astype("boolean")
        failed.iloc[-1] = pd.NA  # the baseline row
        table.insert(len(info), "failed_training", failed)
        for model in table.loc[failed.fillna(False), "model"]:
            print(f"warning: {model}: validation pixel error above {FAILED_FACTOR_OF_SIBLINGS:g} x the median of its other seeds: "
                  "a failed training (see its log)", file=sys.stderr)
    return table


def _is_metric(column: str) -> bool:
    return any(m in column for m in ("pixel_error", *VIDEO_METRICS))


def write_table(table: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


def write_html_table(table: pd.DataFrame, path, title: str) -> None:
    """The summary table as a small HTML page: the report shows HTML inline (a CSV only as a download)."""
    style = (
        "body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse} "
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right} th{background:#eee} "
        "td:first-child,td:nth-child(2){text-align:left}"
    )
    shown = table.astype(object).map(lambda v: "" if pd.isna(v) else f"{v:.2f}" if isinstance(v, float) else str(v))
    body = shown.to_html(index=False)
    note = "<p>Means over every frame and keypoint; _median and _std alongside. Pixels of the original frame.</p>"
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head><body><h3>{title}</h3>{note}{body}</body></html>\n"
    with atomic_path(path) as tmp:
        tmp.write_text(html)


def per_keypoint_by_set(summaries: dict[str, dict]) -> dict:
    """{set: {model: {keypoint: mean pixel error}}} from the summaries."""
    out = {}
    for model, summary in summaries.items():
        for key, values in summary["per_keypoint"].items():
            if key.endswith("_pixel_error"):
                out.setdefault(key.removesuffix("_pixel_error"), {})[model] = values
    return out


def video_metric_values(files: dict[str, dict[str, list[str]]]) -> dict:
    """{metric: {model: every value of that metric over the model's videos}}; ``files[model][metric]``."""
    out = {}
    for model, by_metric in files.items():
        for metric, paths in by_metric.items():
            if paths:
                out.setdefault(metric, {})[model] = np.concatenate([read_metric(p).to_numpy().ravel() for p in paths])
    return out


def plot_comparison(summaries, video_metric_files, per_keypoint_png, distributions_png) -> None:
    plots.pixel_error_per_keypoint(per_keypoint_by_set(summaries), per_keypoint_png)
    plots.video_metric_distributions(video_metric_values(video_metric_files), distributions_png)


def plot_trace(prediction_files: dict[str, str], keypoint: str | None, video: str, path, fps=None) -> str:
    """``prediction_files[model]`` is that model's predictions of ``video``; ``keypoint`` None = the first."""
    traces = {}
    for model, csv in prediction_files.items():
        points, likelihood, names = keypoint_array(read_pose_table(csv))
        keypoint = keypoint or names[0]
        if keypoint not in names:
            raise ValueError(f"{csv}: no keypoint {keypoint!r} (keypoints: {', '.join(names)})")
        k = names.index(keypoint)
        traces[model] = pd.DataFrame({"x": points[:, k, 0], "y": points[:, k, 1], "likelihood": likelihood[:, k]})
    plots.keypoint_trace(traces, keypoint, video, fps, path)
    return keypoint


def plot_ensemble_trace(member_files: dict[str, str], ensemble_csv, keypoint: str | None, video: str, path) -> str:
    """One keypoint of a video as each member predicted it, as the ensemble average and as the
    smoother fused it (``ensemble_csv``: an ensemble's table, scripts/ensemble.py)."""
    table = read_pose_table(ensemble_csv)
    names = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    keypoint = keypoint or names[0]
    if keypoint not in names:
        raise ValueError(f"{ensemble_csv}: no keypoint {keypoint!r} (keypoints: {', '.join(names)})")
    columns = table.xs(keypoint, axis=1, level="bodyparts").droplevel("scorer", axis=1)
    average = next(c.removeprefix("x_ens_") for c in columns.columns if c.startswith("x_ens_") and c != "x_ens_var")
    traces = {}
    for model, csv in member_files.items():
        points, likelihood, member_names = keypoint_array(read_pose_table(csv))
        k = member_names.index(keypoint)
        traces[model] = pd.DataFrame({"x": points[:, k, 0], "y": points[:, k, 1], "likelihood": likelihood[:, k]})
    traces[f"ensemble {average}"] = pd.DataFrame({"x": columns[f"x_ens_{average}"], "y": columns[f"y_ens_{average}"], "likelihood": columns["likelihood"]})
    traces["ensemble smoothed"] = columns[["x", "y", "likelihood"]]
    plots.keypoint_trace(traces, keypoint, video, None, path, thick=(f"ensemble {average}", "ensemble smoothed"))
    return keypoint


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--keypoint", help="keypoint of the traces (default: the first)")
    parser.add_argument("model_dirs", nargs="+")
    args = parser.parse_args(argv)
    dirs = {Path(d).name: Path(d) for d in args.model_dirs}
    summaries = {m: json.loads((d / "metrics" / "summary.json").read_text()) for m, d in dirs.items()}
    out = Path(args.output_dir)
    # Standalone there is no workflow config: the folder name stands for the variant.
    seeds = {m: read_yaml(d / "config.yaml")["training"]["rng_seed_model_pt"] for m, d in dirs.items()}
    table = summary_table(summaries, {m: {"variant": m, "seed": seeds[m]} for m in dirs})
    write_table(table, out / "summary.csv")
    write_html_table(table, out / "summary.html", "Model comparison")
    metric_files = {m: {metric: sorted(str(p) for p in (d / "video_preds").glob(f"*_{metric}.csv")) for metric in VIDEO_METRICS} for m, d in dirs.items()}
    plot_comparison(summaries, metric_files, out / "plots" / "pixel_error_per_keypoint.png", out / "plots" / "video_metrics.png")
    if table["train_frames"].nunique() > 1:
        plots.pixel_error_vs_train_frames(table.iloc[:-1], out / "plots" / "pixel_error_vs_train_frames.png")
    videos = [{p.stem for p in (d / "video_preds").glob("*.csv") if not is_metric_file(p) and not p.name.startswith(".")} for d in dirs.values()]
    for video in sorted(set.intersection(*videos)):
        plot_trace({m: d / "video_preds" / f"{video}.csv" for m, d in dirs.items()}, args.keypoint, video, out / "plots" / "traces" / f"{video}.png")
    print(table.to_string(index=False))


def rule_main(smk):
    if smk.rule == "plot_ensemble_trace":
        plot_ensemble_trace(dict(zip(smk.params.members, smk.input.members)), smk.input.ensemble, smk.params.keypoint, smk.wildcards.video, smk.output[0])
        return
    if smk.rule == "plot_trace":
        plot_trace(dict(zip(smk.params.models, smk.input.predictions)), smk.params.keypoint, smk.wildcards.video, smk.output[0])
        return
    summaries = {m: json.loads(Path(p).read_text()) for m, p in zip(smk.params.model_ids, smk.input.summaries)}
    table = summary_table(summaries, smk.params.models)
    if smk.rule == "plot_train_frames":
        plots.pixel_error_vs_train_frames(table.iloc[:-1], smk.output[0])
        return
    write_table(table, smk.output.table)
    write_html_table(table, smk.output.html, f"Models of {smk.wildcards.dataset}")
    files = {}
    for (model, metric), path in zip(smk.params.video_metrics, smk.input.video_metrics):
        files.setdefault(model, {}).setdefault(metric, []).append(path)
    plot_comparison(summaries, files, smk.output.per_keypoint, smk.output.distributions)


if __name__ == "__main__":
    run(cli_main, rule_main)
