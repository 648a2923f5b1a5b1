"""``train(cfg, model_dir)``: fit a model and write everything a trained model folder holds.

Model folder layout::

    config.yaml              resolved config
    provenance.yaml          versions, git commit, seeds, label hash, SLURM job id
    checkpoints/best.ckpt    lowest validation pixel error
    checkpoints/last.ckpt    end of the latest epoch (training resumes from it)
    tb_logs/                 TensorBoard
    predictions.csv          labeled frames, with the set (train/validation/test/unused) of each
    train_status.json        written last: {"status": "COMPLETED", ...}
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader, RandomSampler

from . import config as config_lib
from .callbacks import ResumableTraining, resume_checkpoint
from .data.labeled import LabeledFrames
from .data.unlabeled import list_videos, unlabeled_loader
from .dataset import load_dataset, resolve
from .errors import InputError
from .io import atomic_path, write_text_atomic
from .models.pose_model import PoseModel
from .predict import predict_labeled
from .provenance import provenance

STATUS_FILE = "train_status.json"


def train(cfg: dict[str, Any], model_dir: str | os.PathLike) -> dict[str, float]:
    """Train the model described by ``cfg`` into ``model_dir``; return validation/test metrics."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(cfg)
    write_text_atomic(model_dir / "config.yaml", config_lib.dump(cfg))
    write_text_atomic(model_dir / "provenance.yaml", config_lib.dump(provenance(cfg, dataset.csv_path)))
    _write_status(model_dir, "TRAINING")

    train_cfg = cfg["training"]
    pl.seed_everything(train_cfg["rng_seed_model_pt"], workers=True, verbose=False)
    size_hw = (cfg["data"]["image_resize_dims"]["height"], cfg["data"]["image_resize_dims"]["width"])
    context = cfg["model"]["do_context"]
    train_set = LabeledFrames(dataset.labels, dataset.data_dir, size_hw, dataset.rows("train"), context=context)
    val_set = LabeledFrames(dataset.labels, dataset.data_dir, size_hw, dataset.rows("validation"), context=context)
    pcas = _fit_pcas(cfg, dataset, model_dir)
    train_loader = _train_loader(cfg, dataset, train_set, size_hw)
    val_loader = DataLoader(val_set, batch_size=train_cfg["val_batch_size"], num_workers=0)

    model = PoseModel(cfg, dataset.labels.num_keypoints, dataset.labels.keypoint_names)
    model.use_unsupervised_losses(pcas)
    if cfg["model"]["checkpoint"]:
        state = torch.load(cfg["model"]["checkpoint"], map_location="cpu", weights_only=False)
        model.load_state_dict(state.get("state_dict", state))

    ckpt_dir = model_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_pixel_error", mode="min", enable_version_counter=False)
    # last.ckpt after every epoch: what an interrupted run resumes from.
    # (save_top_k=0 with save_last=True would write it only at the end of training.)
    last = ModelCheckpoint(dirpath=ckpt_dir, filename="last", every_n_epochs=1, save_on_train_epoch_end=True, enable_version_counter=False)
    trainer = pl.Trainer(
        default_root_dir=model_dir,
        logger=TensorBoardLogger(model_dir, name="tb_logs", version=0),
        callbacks=[best, last, LearningRateMonitor(logging_interval="epoch"), ResumableTraining(train_loader)],
        accelerator=_accelerator(train_cfg),
        devices=_devices(train_cfg),
        precision=train_cfg["precision"] if torch.cuda.is_available() else "32-true",
        min_epochs=train_cfg["min_epochs"],
        max_epochs=train_cfg["max_epochs"],
        limit_train_batches=train_cfg["limit_train_batches"] or 1.0,
        check_val_every_n_epoch=train_cfg["check_val_every_n_epoch"],
        log_every_n_steps=min(train_cfg["log_every_n_steps"], max(1, len(train_set) // train_cfg["train_batch_size"])),
        deterministic="warn",
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    resume = ckpt_dir / "last.ckpt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*upsample_bilinear2d_backward_out_cuda.*")
        trainer.fit(model, train_loader, val_loader, ckpt_path=resume_checkpoint(resume, cfg), weights_only=False)  # our own checkpoint
    if not (ckpt_dir / "best.ckpt").exists():  # no validation ran (very short runs): last is best
        shutil.copyfile(resume, ckpt_dir / "best.ckpt")

    best_model = PoseModel.load_from_checkpoint(ckpt_dir / "best.ckpt", map_location="cpu", weights_only=False)
    table = predict_labeled(best_model, dataset, batch_size=train_cfg["test_batch_size"])
    with atomic_path(model_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, float_format="%.4f")
    from .metrics import pixel_error, summarize_pixel_error

    metrics = summarize_pixel_error(pixel_error(table, dataset.labels))
    _write_status(model_dir, "COMPLETED", metrics=metrics, epochs=trainer.current_epoch)
    return metrics


def _fit_pcas(cfg: dict, dataset, model_dir: Path) -> dict:
    """Fit (and save with the model) the Pose PCAs the config describes, on the training labels in
    original-frame pixels. A PCA only needed for metrics may fail to fit (too few labels) with a
    warning; one that a loss needs stops training with the reason."""
    from .pca import fit_model_pcas

    try:
        return fit_model_pcas(cfg, dataset.labels.keypoints[dataset.rows("train")], model_dir)
    except ValueError as err:
        if any(name.startswith("pca_") for name in cfg["model"]["losses_to_use"]):
            raise InputError(dataset.csv_path, str(err)) from None
        warnings.warn(f"no Pose PCA for metrics: {err}")
        return {}


def _train_loader(cfg: dict, dataset, train_set, size_hw):
    """Labeled batches; for semi-supervised models combined with one unlabeled clip per step."""
    train_cfg = cfg["training"]
    batch_size = min(train_cfg["train_batch_size"], len(train_set))
    generator = torch.Generator().manual_seed(train_cfg["rng_seed_model_pt"])
    workers = num_workers(train_cfg)
    if not cfg["model"]["losses_to_use"]:
        return DataLoader(
            train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=workers, persistent_workers=workers > 0,
            drop_last=len(train_set) > batch_size,  # BatchNorm dislikes a batch of one
        )
    # As upstream: at least 10 steps per epoch, so small labeled sets still see enough video.
    steps = max(10, math.ceil(len(train_set) / batch_size))
    sampler = RandomSampler(train_set, num_samples=steps * batch_size, generator=generator)
    labeled = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=workers, persistent_workers=workers > 0)
    video_dir = resolve(dataset.data_dir, cfg["data"]["video_dir"])
    if video_dir is None:
        raise InputError("config", f"model.losses_to_use={cfg['model']['losses_to_use']} needs data.video_dir")
    dali = cfg["dali"]
    length = dali["context"]["train"]["batch_size"] if cfg["model"]["do_context"] else dali["base"]["train"]["sequence_length"]
    seed = dali["general"]["seed"] + train_cfg["rng_seed_model_pt"]
    unlabeled = unlabeled_loader(list_videos(video_dir), length, size_hw, seed, backend=dali["backend"])
    return CombinedLoader({"labeled": labeled, "unlabeled": unlabeled}, mode="min_size")


def num_workers(train_cfg: dict) -> int:
    if train_cfg["num_workers"] is not None:
        return train_cfg["num_workers"]
    # Labeled frames are decoded once and kept in memory, so workers only pay off for large sets.
    return 0


def _accelerator(train_cfg: dict) -> str:
    if train_cfg["accelerator"] == "gpu" and not torch.cuda.is_available():
        warnings.warn("training.accelerator is gpu but no CUDA device is visible; training on CPU")
        return "cpu"
    return "gpu" if train_cfg["accelerator"] in ("auto", "gpu") and torch.cuda.is_available() else "cpu"


def _devices(train_cfg: dict) -> int:
    if not torch.cuda.is_available():
        return 1
    return max(1, min(train_cfg["num_gpus"], torch.cuda.device_count()))


def _write_status(model_dir: Path, status: str, **extra: Any) -> None:
    record = {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    write_text_atomic(model_dir / STATUS_FILE, json.dumps(record, indent=2) + "\n")


def is_complete(model_dir: str | os.PathLike) -> bool:
    path = Path(model_dir) / STATUS_FILE
    return path.exists() and json.loads(path.read_text()).get("status") == "COMPLETED"
