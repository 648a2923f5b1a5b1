#!/usr/bin/env python
"""Fuse the predictions of several models (an ensemble) with the Ensemble Kalman Smoother:
``ensemble.py --out-dir DIR MODEL_DIR MODEL_DIR [...]``.

For every video that all models predicted (``<model dir>/video_preds/<video>.csv``) it writes
``DIR/video_preds/<video>.csv`` and ``.h5``: the layout of a model's predictions, whose x, y and
likelihood are the smoothed keypoints and the members' mean likelihood, followed per keypoint by
the ensemble average (``x_ens_median``, ``y_ens_median`` or ``..._mean``), the ensemble variance
(``x_ens_var``, ``y_ens_var``) and the smoother's posterior variance (``x_posterior_var``,
``y_posterior_var``), in px^2. Then, so that evaluate.py evaluates the ensemble like a model:
``DIR/predictions.csv`` (the labeled frames, taken from the fused videos they were cut from;
empty for frames of videos not predicted, with the first member's train/validation/test set),
``DIR/config.yaml`` and the Pose PCAs of the first member (``pca_*.npz``).

The views of ``data.mirrored_column_matches`` in the first member's config are smoothed jointly
(``--single-view`` smooths every keypoint on its own). ``--smoother none`` writes the ensemble
average instead. The smoothing parameter is chosen per keypoint from each video unless
``--smooth-param`` sets it.
"""

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from lightning_pose_lib.cli import ArgumentParser, run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import read_labels, write_pose_table
from lightning_pose_lib.dataset import resolve
from lightning_pose_lib.ensemble import AVERAGES, VARIANCES, fuse, fusion_table, labeled_frames_from_videos, member_arrays
from lightning_pose_lib.io import atomic_path, write_csv
from lightning_pose_lib.metrics import SET_COLUMN, is_metric_file, read_predictions
from lightning_pose_lib.pca import pca_path

log = logging.getLogger("ensemble")


def mirrored_views(model_dir) -> list[list[int]] | None:
    """The view groups of a member's ``data.mirrored_column_matches`` (one list per view), or None."""
    matches = read_yaml(Path(model_dir) / "config.yaml")["data"]["mirrored_column_matches"]
    if matches and all(isinstance(view, list) for view in matches) and len(matches) > 1:
        return matches
    return None


def fuse_video(member_files, csv, h5=None, smoother="eks", average="median", variance="confidence_weighted", views=None, smooth_param=None):
    """Fuse one video's member predictions into ``csv`` (and ``h5``); returns the Fusion."""
    tables = [read_predictions(path) for path in member_files]
    points, likelihood, names = member_arrays(tables, [str(p) for p in member_files])
    start = time.perf_counter()
    fusion = fuse(points, likelihood, smoother, average, variance, views, smooth_param)
    seconds = time.perf_counter() - start
    write_pose_table(fusion_table(fusion, names, average), csv, h5)
    chosen = "" if smoother == "none" else "; smoothing parameter per keypoint: " + json.dumps(dict(zip(names, np.round(fusion.smooth_param, 4).tolist())))
    log.info("%s: %d members, %d frames x %d keypoints fused in %.2f s (%s)%s", csv, len(tables), points.shape[1], points.shape[2], seconds, smoother, chosen)
    return fusion


def write_labeled(ensemble_dir, first_member, video_files: dict[str, str]) -> None:
    """The ensemble's predictions on labeled frames, its config and PCAs (see the module doc)."""
    ensemble_dir, first_member = Path(ensemble_dir), Path(first_member)
    cfg = read_yaml(first_member / "config.yaml")
    labels = read_labels(resolve(Path(cfg["data"]["data_dir"]), cfg["data"]["csv_file"]))
    table = labeled_frames_from_videos(labels.image_paths, {stem: read_predictions(path) for stem, path in video_files.items()})
    table[SET_COLUMN] = read_predictions(first_member / "predictions.csv")[SET_COLUMN].to_numpy()
    write_csv(table, ensemble_dir / "predictions.csv")
    for kind in ("singleview", "multiview"):
        if pca_path(first_member, kind).exists():
            with atomic_path(pca_path(ensemble_dir, kind)) as tmp:
                shutil.copyfile(pca_path(first_member, kind), tmp)
    with atomic_path(ensemble_dir / "config.yaml") as tmp:  # last: evaluation's sign that the rest is there
        shutil.copyfile(first_member / "config.yaml", tmp)


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--smoother", choices=["eks", "none"], default="eks")
    parser.add_argument("--average", choices=AVERAGES, default="median")
    parser.add_argument("--variance", choices=VARIANCES, default="confidence_weighted")
    parser.add_argument("--smooth-param", type=float, help="the smoother's s for every keypoint (default: chosen per keypoint)")
    parser.add_argument("--single-view", action="store_true", help="smooth every keypoint on its own, even with mirrored views")
    parser.add_argument("model_dirs", nargs="+")
    args = parser.parse_args(argv)
    members = [Path(d) for d in args.model_dirs]
    stems = [{p.stem for p in (d / "video_preds").glob("*.csv") if not is_metric_file(p) and not p.name.startswith(".")} for d in members]
    videos = sorted(set.intersection(*stems))
    if not videos:
        parser.error("the models have no predicted video in common (<model dir>/video_preds/<video>.csv)")
    views = None if args.single_view else mirrored_views(members[0])
    out = Path(args.out_dir)
    for video in videos:
        fuse_video([d / "video_preds" / f"{video}.csv" for d in members], out / "video_preds" / f"{video}.csv", out / "video_preds" / f"{video}.h5",
                   args.smoother, args.average, args.variance, views, args.smooth_param)
    write_labeled(out, members[0], {v: out / "video_preds" / f"{v}.csv" for v in videos})
    print(out)


def rule_main(smk):
    if smk.rule == "ensemble_labeled":
        write_labeled(Path(smk.output.config).parent, smk.params.first_member, dict(zip(smk.params.videos, smk.input.videos)))
        return
    s = smk.params.settings
    fuse_video(smk.input.members, smk.output.csv, smk.output.h5, s["smoother"], s["average"], s["variance"], smk.params.views, s["smooth_param"])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small matrices: threads only cost
    run(cli_main, rule_main)
