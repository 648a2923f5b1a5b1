"""Projects of other tools made from the generated example (lightning_pose_lib.example), as those
tools write them: a DeepLabCut project, SLEAP labels, a Lightning Pose config."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lightning_pose_lib.data.labels import read_labels

DLC_SCORER = "Alice"


def make_dlc_project(example: Path, root: Path) -> Path:
    """A DeepLabCut 2.x single-animal project: config.yaml, videos/, and per session
    labeled-data/<session>/ with the images and CollectedData_<scorer>.csv and .h5 (three index
    columns, as DeepLabCut 2.2+ writes them). The config's video_sets name the videos where they
    were when the project was made (no longer there), as in a moved project."""
    labels = read_labels(example / "CollectedData.csv")
    sessions = sorted({p.split("/")[1] for p in labels.image_paths})
    shutil.copytree(example / "videos", root / "videos", ignore=shutil.ignore_patterns("*_truth.csv"))
    columns = pd.MultiIndex.from_product([[DLC_SCORER], labels.keypoint_names, ["x", "y"]], names=["scorer", "bodyparts", "coords"])
    for session in sessions:
        rows = [i for i, p in enumerate(labels.image_paths) if p.split("/")[1] == session]
        shutil.copytree(example / "labeled-data" / session, root / "labeled-data" / session)
        index = pd.MultiIndex.from_tuples([tuple(labels.image_paths[i].split("/")) for i in rows])
        table = pd.DataFrame(labels.keypoints[rows].reshape(len(rows), -1), index=index, columns=columns)
        table.to_csv(root / "labeled-data" / session / f"CollectedData_{DLC_SCORER}.csv")
        table.to_hdf(root / "labeled-data" / session / f"CollectedData_{DLC_SCORER}.h5", key="df_with_missing", mode="w")
    config = {
        "Task": "walk", "scorer": DLC_SCORER, "date": "Dec4", "multianimalproject": False, "identity": None,
        "project_path": "/home/alice/walk-Alice-2026-12-04",
        "video_sets": {f"/home/alice/videos/{s}.mp4": {"crop": "0, 256, 0, 128"} for s in sessions},
        "bodyparts": labels.keypoint_names, "start": 0, "stop": 1, "numframes2pick": 20,
        "skeleton": [[labels.keypoint_names[0], labels.keypoint_names[3]]], "TrainingFraction": [0.95], "iteration": 0,
        "default_net_type": "resnet_50", "snapshotindex": -1, "batch_size": 8,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def make_sleap_file(example: Path, path: Path, embed: bool) -> Path:
    """SLEAP labels of the example, one user instance per labeled frame, written by sleap-io:
    frames referenced in the videos (.slp) or embedded (.pkg.slp)."""
    import sleap_io as sio

    labels = read_labels(example / "CollectedData.csv")
    skeleton = sio.Skeleton(labels.keypoint_names)
    videos, frames = {}, []
    for image, points in zip(labels.image_paths, labels.keypoints):
        session, name = image.split("/")[1:]
        video = videos.setdefault(session, sio.Video.from_filename(str(example / "videos" / f"{session}.mp4")))
        instance = sio.Instance.from_numpy(points, skeleton=skeleton)
        frames.append(sio.LabeledFrame(video=video, frame_idx=int(name[3:11]), instances=[instance]))
    out = sio.Labels(labeled_frames=frames, videos=list(videos.values()), skeletons=[skeleton])
    sio.save_slp(out, str(path), embed="user" if embed else False, verbose=False)
    return path


def make_lightning_pose_config(example: Path, path: Path, model: dict) -> Path:
    """An upstream-style Lightning Pose config: its sections, this project's `model` settings for
    a tiny training, and keys this project does not have (hydra, callbacks, ...)."""
    config = {
        "data": {
            "image_resize_dims": model["data"]["image_resize_dims"], "data_dir": str(example), "video_dir": "videos",
            "csv_file": "CollectedData.csv", "downsample_factor": 2, "num_keypoints": 12,
            "mirrored_column_matches": [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], "columns_for_singleview_pca": [0, 1, 2, 3, 4, 5],
        },
        "training": {**model["training"], "imgaug": "dlc", "imgaug_hflip": False, "ckpt_every_n_epochs": None, "uniform_heatmaps_for_nan_keypoints": True},
        "model": {**model["model"], "model_type": "heatmap", "losses_to_use": [], "model_name": "test"},
        "dali": model["dali"],
        "losses": {"temporal": {"log_weight": 11.0, "epsilon": 20.0, "prob_threshold": 0.05}},
        "eval": {"predict_vids_after_training": True, "save_vids_after_training": False, "colormap": "cool", "confidence_thresh_for_vid": 0.9},
        "callbacks": {"anneal_weight": {"attr_name": "total_unsupervised_importance", "init_val": 0.0, "increase_factor": 0.01, "final_val": 1.0, "freeze_until_epoch": 0}},
        "hydra": {"run": {"dir": "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}"}},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def keypoints_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(np.nan_to_num(a), np.nan_to_num(b), atol=1e-6))
