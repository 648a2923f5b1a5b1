#!/usr/bin/env python
"""Compare the models of a dataset: ``summarize.py --output-dir DIR MODEL_DIR [MODEL_DIR ...]``.

Writes ``summary.csv`` (one row per model: variant, sweep values, seed, metrics; plus the mean-pose
baseline) and ``pixel_error_per_keypoint.png``.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lightning_pose_lib.cli import run  # noqa: E402
from lightning_pose_lib.io import atomic_path  # noqa: E402

METRICS = ("train_pixel_error", "validation_pixel_error", "test_pixel_error", "mean_temporal_norm")


def summarize(summaries: dict[str, dict], models: dict[str, dict], table_path, plot_path):
    rows = []
    for model_id, summary in summaries.items():
        rows.append({"model": model_id, **models.get(model_id, {}), **{m: summary.get(m, np.nan) for m in METRICS}})
    first = next(iter(summaries.values()))
    rows.append({"model": "mean_pose_baseline", **{m: first.get(f"baseline_{m}", np.nan) for m in METRICS[:3]}})
    table = pd.DataFrame(rows)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")

    split = "test" if "test" in first["pixel_error_per_keypoint"] else "validation"
    per_keypoint = pd.DataFrame({m: s["pixel_error_per_keypoint"][split] for m, s in summaries.items()})
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(per_keypoint)), 4), layout="constrained")
    per_keypoint.plot.bar(ax=ax, width=0.8)
    ax.set_title(f"Pixel error per keypoint ({split} frames)")
    ax.set_xlabel("keypoint")
    ax.set_ylabel("pixel error (px, original frame)")
    ax.legend(title="model", fontsize="small")
    with atomic_path(plot_path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return table


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("model_dirs", nargs="+")
    args = parser.parse_args(argv)
    summaries = {Path(d).name: json.loads((Path(d) / "metrics" / "summary.json").read_text()) for d in args.model_dirs}
    out = Path(args.output_dir)
    print(summarize(summaries, {}, out / "summary.csv", out / "pixel_error_per_keypoint.png").to_string(index=False))


def rule_main(smk):
    summaries = {Path(p).parent.parent.name: json.loads(Path(p).read_text()) for p in smk.input}
    summarize(summaries, smk.params.models, smk.output.table, smk.output.plot)


if __name__ == "__main__":
    run(cli_main, rule_main)
