"""Prediction on labeled frames and on videos, written in the label layout in original pixels."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .data.labels import pose_table, write_pose_table
from .data.transforms import rescale_points, to_model_input
from .errors import InputError
from .models.pose_model import CONTEXT, PoseModel
from .video import open_video, probe_video


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> PoseModel:
    """The best checkpoint of a trained model folder, in eval mode on ``device``."""
    path = Path(model_dir) / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise InputError(path, "no trained model here (checkpoint missing; has training finished?)")
    model = PoseModel.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    return model.eval().to(device)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def _predict_batch(model: PoseModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(images)
    return out["keypoints"].float(), out["likelihood"].float()


def predict_labeled(model: PoseModel, dataset, batch_size: int = 32) -> pd.DataFrame:
    """Predictions for every labeled frame, with a trailing ``set`` column (train/validation/...)."""
    from .data.labeled import LabeledFrames

    model.eval()
    device = model.device
    frames = LabeledFrames(dataset.labels, dataset.data_dir, model.input_hw, context=model.is_context)
    keypoints, likelihood = [], []
    for start in range(0, len(frames), batch_size):
        images = frames.images[start : start + batch_size].to(device).float().div_(255.0)
        points, conf = _predict_batch(model, images)
        for p, hw in zip(points.cpu(), frames.orig_hw[start : start + batch_size]):
            keypoints.append(rescale_points(p, model.input_hw, tuple(hw.tolist())).numpy())
        likelihood.append(conf.cpu().numpy())
    scorer = f"{model.model_type}_tracker"
    table = pose_table(np.stack(keypoints), dataset.labels.keypoint_names, scorer, np.concatenate(likelihood), dataset.labels.image_paths)
    table[("set", "", "")] = dataset.sets
    return table


def predict_video(
    model: PoseModel,
    video_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    h5_path: str | os.PathLike | None = None,
    batch_size: int = 96,
    backend: str = "auto",
    keypoint_names: list[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict every frame of a video; write ``csv_path`` (and ``h5_path``) atomically.

    The context model sees frames t-2..t+2; at the first and last two frames of the video the
    missing neighbours are copies of the edge frame. Its two heads' own predictions are also
    written, to ``heads/<stem>_static.csv`` and ``heads/<stem>_context.csv`` beside ``csv_path``.
    """
    info = probe_video(video_path)
    names = keypoint_names or model.hparams.get("keypoint_names") or [f"kp{k}" for k in range(model.num_keypoints)]
    fields = ("", "static_", "context_") if model.is_context else ("",)
    keypoints = {f: np.full((info.num_frames, model.num_keypoints, 2), np.nan) for f in fields}
    likelihood = {f: np.zeros((info.num_frames, model.num_keypoints)) for f in fields}
    seen = np.zeros(info.num_frames, dtype=bool)
    bar = tqdm(total=info.num_frames, desc=Path(video_path).name, unit="frame", disable=not progress, file=sys.stderr)
    with open_video(video_path, backend=backend) as reader:
        for indices, out in _sequence_outputs(model, reader.iter_batches(batch_size), info.num_frames):
            for f in fields:
                points = rescale_points(out[f"{f}keypoints"].float(), model.input_hw, (info.height, info.width))
                keypoints[f][indices] = points.cpu().numpy()
                likelihood[f][indices] = out[f"{f}likelihood"].float().cpu().numpy()
            seen[indices] = True
            bar.update(len(indices))
    bar.close()
    if not seen.all():
        raise InputError(video_path, f"decoded {int(seen.sum())} of {info.num_frames} frames; the file may be truncated")
    scorer = f"{model.model_type}_tracker"
    table = pose_table(keypoints[""], names, scorer, likelihood[""])
    for f in fields[1:]:
        head_csv = Path(csv_path).parent / "heads" / f"{Path(csv_path).stem}_{f.rstrip('_')}.csv"
        write_pose_table(pose_table(keypoints[f], names, scorer, likelihood[f]), head_csv)
    write_pose_table(table, csv_path, h5_path)
    return table


@torch.inference_mode()
def _sequence_outputs(model: PoseModel, batches, num_frames: int):
    """(frame indices, model outputs) per decoded batch. For the context model, consecutive batches
    overlap by four frames so every frame has its neighbours."""
    device = model.device
    if not model.is_context:
        for indices, frames in batches:
            yield indices, model(to_model_input(frames, model.input_hw, device))
        return
    carry = None  # the last 2 * CONTEXT frames of the previous batch (model input)
    carry_indices = np.zeros(0, dtype=np.int64)
    for indices, frames in batches:
        images = to_model_input(frames, model.input_hw, device)
        if carry is None:  # start of the video: the first frame stands in for frames -2 and -1
            carry = images[:1].expand(CONTEXT, -1, -1, -1)
            carry_indices = np.full(CONTEXT, -1)
        sequence = torch.cat([carry, images])
        sequence_indices = np.concatenate([carry_indices, indices])
        if indices[-1] == num_frames - 1:  # end of the video: the last frame stands in for the next two
            sequence = torch.cat([sequence, images[-1:].expand(CONTEXT, -1, -1, -1)])
            sequence_indices = np.concatenate([sequence_indices, np.full(CONTEXT, -1)])
        if len(sequence) > 2 * CONTEXT:
            yield sequence_indices[CONTEXT:-CONTEXT], model.forward_sequence(sequence)
        carry, carry_indices = sequence[-2 * CONTEXT :], sequence_indices[-2 * CONTEXT :]
