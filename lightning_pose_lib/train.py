"""``train(cfg, model_dir)``: fit a model and write everything a trained model folder holds.

Model folder layout::

    config.yaml              resolved config
    provenance.yaml          versions, git commit, seeds, label hash, SLURM job id; every run (resumes)
    checkpoints/best.ckpt    weights of the lowest validation pixel error
    checkpoints/last.ckpt    everything a resume needs (training resumes from it), written on a time
                             interval, at the end and on SIGTERM/SIGUSR1 (callbacks.LastCheckpoint)
    tb_logs/version_N/       TensorBoard: a resumed training continues its run, one started over
                             begins the next version
    predictions.csv          labeled frames, with the set (train/validation/test/unused) of each
    train_status.json        written last: {"status": "COMPLETED", "train_steps_per_s": ..., ...}
    .lock                    held while a process trains (alone) or predicts (shared); see locks.py

Several devices (``training.num_gpus`` > 1; see :func:`_devices`) train with Lightning's ``ddp``
strategy on one node: the process running this function is global rank 0 and starts one copy of
its own entry script (``sys.argv``, e.g. ``scripts/train.py``) per further device when
``trainer.fit`` begins; each copy calls ``train()`` again with the same config. Rank 0 alone writes
the model folder (config, provenance, PCAs, checkpoints, logs, predictions, status); the other ranks
only help fit and return None. ``training.train_batch_size`` is per device (as upstream): a step
trains on ``train_batch_size x devices`` labeled frames, each device its own share of one shuffled
order (:class:`ShardedRandomSampler`), and one epoch is still one pass over the training frames.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import numpy as np
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader, RandomSampler, Sampler

from . import checkpoints
from . import config as config_lib
from .callbacks import LastCheckpoint, ResumableTraining, TrainingProgress, TrainingSpeed, resume_checkpoint
from .data.labeled import LabeledFrames
from .data.multiview import MultiviewFrames, session_loader
from .data.sessions import group_sessions
from .data.unlabeled import unlabeled_loader
from .streams import compute_stream
from .dataset import load_dataset, resolve
from .video import list_videos
from .errors import InputError
from .io import atomic_path, remove_leftovers, write_csv, write_text_atomic
from .locks import model_lock
from .models.pose_model import PoseModel
from .predict import predict_labeled
from .progress import since_process_start
from .provenance import record_run
from .status import write_status


log = logging.getLogger(__name__)


def train(cfg: dict[str, Any], model_dir: str | os.PathLike) -> dict[str, float] | None:
    """Train the model described by ``cfg`` into ``model_dir``; return validation/test metrics
    (None on the ranks other than 0 of a multi-device run, which write nothing).

    Bad labels or images stop it before anything is written. The first process holds the model
    folder's lock throughout; the other ranks of a multi-device run (started by it, with
    LOCAL_RANK set) work under its lock."""
    model_dir = Path(model_dir)
    dataset = load_dataset(cfg)
    first_process = os.environ.get("LOCAL_RANK", "0") == "0"
    with model_lock(model_dir) if first_process else contextlib.nullcontext():
        return _train(cfg, model_dir, dataset)


def _train(cfg: dict[str, Any], model_dir: Path, dataset) -> dict[str, float] | None:
    train_cfg = cfg["training"]
    accelerator = _accelerator(train_cfg)
    devices = _devices(train_cfg, accelerator)

    ckpt_dir = model_dir / "checkpoints"
    # Validation metrics are synced across devices (PoseModel logs them with sync_dist), so every
    # rank agrees on the best epoch and on when to save.
    # Weights only: prediction reads nothing else, and resuming reads last.ckpt.
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_pixel_error", mode="min", enable_version_counter=False, save_weights_only=True)
    resumable = ResumableTraining()  # given the training loader below, once this rank's is made
    last = LastCheckpoint(ckpt_dir, train_cfg["last_checkpoint_minutes"] * 60, resumable)
    speed = TrainingSpeed()
    trainer = pl.Trainer(
        default_root_dir=model_dir,
        logger=TensorBoardLogger(model_dir, name="tb_logs"),  # its version is set below, once resuming is decided
        callbacks=[best, last, LearningRateMonitor(logging_interval="epoch"), resumable, speed, TrainingProgress(speed)],
        # Every checkpoint read safely and written atomically; the cluster environment is
        # Lightning's own, whatever the job runs under (see _strategy).
        plugins=[CheckpointFiles(), LightningEnvironment()],
        accelerator=accelerator,
        devices=devices,
        strategy=_strategy(devices),
        # Our samplers shard the training frames themselves (ShardedRandomSampler); every rank
        # validates on the whole validation set, so the synced validation error is exactly the
        # single-device one (a DistributedSampler would pad the shards with repeated frames).
        use_distributed_sampler=False,
        precision=train_cfg["precision"] if accelerator == "gpu" else "32-true",
        min_epochs=train_cfg["min_epochs"],
        max_epochs=train_cfg["max_epochs"],
        limit_train_batches=train_cfg["limit_train_batches"] or 1.0,
        check_val_every_n_epoch=train_cfg["check_val_every_n_epoch"],
        log_every_n_steps=min(train_cfg["log_every_n_steps"], max(1, len(dataset.rows("train")) // (train_cfg["train_batch_size"] * devices))),
        deterministic="warn",
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    # Deterministic algorithms (set by the Trainer), without PyTorch's companion setting that fills
    # the memory of every new tensor first: that only changes what code reading memory it never
    # wrote sees, and it costs a fill kernel for every tensor made (benchmarks/train_step.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    # Known from the launcher's environment variables as soon as the Trainer exists; rank 0 runs
    # before the other ranks are started (at trainer.fit), so they find its files in place.
    rank, world_size = trainer.global_rank, trainer.world_size
    if accelerator == "gpu":
        # This rank's GPU from the start (Lightning selects it only inside fit): the compute stream
        # below and the unlabeled clips' DALI pipeline are made on the current device, and rank 1
        # must not open a CUDA context on GPU 0.
        torch.cuda.set_device(trainer.strategy.root_device)
    if world_size > 1:
        log.info("training on %d %s devices with DDP: this is global rank %d of world size %d", world_size, accelerator, rank, world_size)
    if rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
        if ckpt_dir.is_dir():  # a killed run's half-written checkpoints
            for name in ("best.ckpt", "last.ckpt"):
                remove_leftovers(ckpt_dir / name)
        write_text_atomic(model_dir / "config.yaml", config_lib.dump(cfg))
        write_status(model_dir, "TRAINING")

    pl.seed_everything(train_cfg["rng_seed_model_pt"], workers=True, verbose=False)
    size_hw = (cfg["data"]["image_resize_dims"]["height"], cfg["data"]["image_resize_dims"]["width"])
    context = cfg["model"]["do_context"]
    train_set = labeled_frames(dataset, size_hw, dataset.rows("train"), context)
    val_set = labeled_frames(dataset, size_hw, dataset.rows("validation"), context)
    pcas = _fit_pcas(cfg, dataset, model_dir if rank == 0 else None)  # the same fit on every rank, saved once
    train_loader = _train_loader(cfg, dataset, train_set, size_hw, rank=rank, world_size=world_size)
    resumable.train_loader = train_loader
    val_loader = DataLoader(val_set, batch_size=train_cfg["val_batch_size"], num_workers=0)

    per_view = dataset.view_labels[0]  # the network predicts one view's keypoints, for every view
    model = PoseModel(cfg, per_view.num_keypoints, per_view.keypoint_names)
    model.use_unsupervised_losses(pcas)
    if cfg["model"]["checkpoint"]:
        checkpoints.load_weights(model, cfg["model"]["checkpoint"])

    resume = ckpt_dir / "last.ckpt"
    # Rank 0 decides (and removes a last.ckpt it must not resume) before the other ranks exist;
    # they resume from what it left.
    ckpt_path = resume_checkpoint(resume, cfg) if rank == 0 else (resume if resume.exists() else None)
    if rank == 0:
        record_run(model_dir / "provenance.yaml", cfg, dataset.csv_path, resumed=ckpt_path is not None)
    trainer.logger = TensorBoardLogger(model_dir, name="tb_logs", version=tensorboard_version(model_dir / "tb_logs", resumed=ckpt_path is not None))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*upsample_bilinear2d_backward_out_cuda.*")
        try:
            with compute_stream():  # the unlabeled clips' decoder must not serialize with the steps
                trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
        except BaseException as err:
            # A stop on a signal (SystemExit) ends every rank at the same epoch end: let them exit.
            # Anything else leaves the other ranks nothing to do but hang in a collective: end them.
            _end_other_ranks(trainer, wait=isinstance(err, SystemExit))
            raise
    if world_size > 1:
        # Every rank, together, while all are alive. Left to the interpreter's exit, rank 1 of a
        # 2-GPU run did not end until rank 0 killed it a minute later (_end_other_ranks), which
        # doubled a short training's wall time on the H200 machine (116 s instead of 61 s).
        torch.distributed.destroy_process_group()
    if rank != 0:
        return None
    if not (ckpt_dir / "best.ckpt").exists():  # no validation ran (very short runs): last is best
        with atomic_path(ckpt_dir / "best.ckpt") as tmp:  # like every checkpoint: complete or absent
            shutil.copyfile(resume, tmp)

    # On the device that trained (Lightning hands the module back on the CPU): a ResNet-50 at 256 px
    # predicted 10 frames/s on 2 CPU cores, and a dataset has hundreds to thousands of labels.
    device = trainer.strategy.root_device
    log.info("training ended after epoch %d, %s s after the process started; predicting the %d labeled frames with the best checkpoint on %s",
             trainer.current_epoch, since_process_start(), len(dataset.labels), device)
    best_model = checkpoints.load_pose_model(ckpt_dir / "best.ckpt", device)
    sets = [train_set, val_set]  # read at the start: only the other labeled frames are read again
    decoded = list(zip(*(frames.views for frames in sets))) if dataset.view_names else [sets]
    table = predict_labeled(best_model, dataset, batch_size=train_cfg["test_batch_size"], decoded=decoded)
    write_csv(table, model_dir / "predictions.csv")
    from .metrics import SET_COLUMN, mean_pose_baseline, pixel_error, summarize_pixel_error, unconverged_warning

    metrics = summarize_pixel_error(pixel_error(table, dataset.labels))
    baseline = summarize_pixel_error(mean_pose_baseline(dataset.labels, table[SET_COLUMN].to_numpy().astype(str)))
    warning = unconverged_warning(metrics, baseline)
    if warning:
        log.warning("%s: %s", model_dir, warning)
    _end_other_ranks(trainer, wait=True)
    write_status(model_dir, "COMPLETED", metrics=metrics, epochs=trainer.current_epoch, train_steps_per_s=speed.steps_per_second(),
                  **({"warning": warning} if warning else {}))
    log.info("training done and written: %s s after the process started", since_process_start())  # benchmarks/cold_start.py reads this line
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


def _train_loader(cfg: dict, dataset, train_set, size_hw, rank: int = 0, world_size: int = 1):
    """Labeled batches; for semi-supervised models combined with one unlabeled clip per step.

    ``train_batch_size`` is per device. With several devices (``world_size`` > 1) each rank takes
    its share of one shuffled order (:class:`ShardedRandomSampler`), so all ranks run the same
    number of steps and an epoch is one pass over the training frames; each rank draws its own
    stream of unlabeled clips.
    """
    train_cfg = cfg["training"]
    # A device's batch: at most its share of the training frames.
    batch_size = max(1, min(train_cfg["train_batch_size"], len(train_set) // world_size))
    generator = torch.Generator().manual_seed(train_cfg["rng_seed_model_pt"])  # the same on every rank
    workers = num_workers(train_cfg)
    semi_supervised = bool(cfg["model"]["losses_to_use"])
    if not semi_supervised and world_size == 1:
        return DataLoader(
            train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
            drop_last=len(train_set) > batch_size,  # BatchNorm dislikes a batch of one
        )
    if semi_supervised:
        # As upstream: at least 10 steps per epoch, so small labeled sets still see enough video.
        steps = max(10, math.ceil(len(train_set) / (batch_size * world_size)))
    else:
        steps = max(1, len(train_set) // (batch_size * world_size))  # whole batches, as drop_last above
    if world_size == 1:
        sampler = RandomSampler(train_set, num_samples=steps * batch_size, generator=generator)
    else:
        sampler = ShardedRandomSampler(train_set, steps * batch_size, generator, rank, world_size)
    labeled = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
    if not semi_supervised:
        return labeled
    video_dir = resolve(dataset.data_dir, cfg["data"]["video_dir"])
    if video_dir is None:
        raise InputError("config", f"model.losses_to_use={cfg['model']['losses_to_use']} needs data.video_dir")
    dali = cfg["dali"]
    length = dali["context"]["train"]["batch_size"] if cfg["model"]["do_context"] else dali["base"]["train"]["sequence_length"]
    seed = unlabeled_seed(dali["general"]["seed"] + train_cfg["rng_seed_model_pt"], rank)
    if dataset.view_names:
        sessions = group_sessions(list_videos(video_dir), dataset.view_names)
        unlabeled = session_loader(sessions, length, size_hw, seed)
    else:
        unlabeled = unlabeled_loader(list_videos(video_dir), length, size_hw, seed, backend=dali["backend"])
    return CombinedLoader({"labeled": labeled, "unlabeled": unlabeled}, mode="min_size")


def labeled_frames(dataset, size_hw, rows, context: bool):
    """The labeled frames of ``rows``; with several cameras, every view of each."""
    if dataset.view_names:
        return MultiviewFrames(dataset.views, dataset.data_dir, size_hw, rows, context=context)
    return LabeledFrames(dataset.labels, dataset.data_dir, size_hw, rows, context=context)


def unlabeled_seed(seed: int, rank: int) -> int:
    """Seed of a rank's unlabeled clip stream: ``seed`` itself on rank 0 (so one device draws the
    clips it always drew), a distinct seed derived from (seed, rank) on every other rank, so that the
    devices train on different clips."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class ShardedRandomSampler(Sampler[int]):
    """One rank's share of a random order common to all ranks: the ``num_samples x world_size``
    indices ``RandomSampler(num_samples=num_samples * world_size)`` draws (passes over the data
    set, each a permutation) from ``generator``, which every rank seeds alike; rank ``r`` takes
    positions ``r, r + world_size, ...``. The ranks' shares are disjoint within each pass and equal
    in length (so every rank runs the same number of steps: DDP needs it).

    The whole order is drawn when an epoch starts, so the generator advances identically on every
    rank however far the epoch is consumed, and its state in a checkpoint (rank 0's) restores every
    rank. ``generator`` is exposed for the resumable-training callback, as RandomSampler does."""

    def __init__(self, data_source, num_samples: int, generator: torch.Generator, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.order = RandomSampler(data_source, num_samples=num_samples * world_size, generator=generator)
        self.generator = generator
        self.num_samples, self.rank, self.world_size = num_samples, rank, world_size

    def __iter__(self):
        order = list(self.order)
        return itertools.islice(iter(order), self.rank, None, self.world_size)

    def __len__(self) -> int:
        return self.num_samples


def num_workers(train_cfg: dict) -> int:
    if train_cfg["num_workers"] is not None:
        return train_cfg["num_workers"]
    # Labeled frames are decoded once and kept in memory, so on CPU a worker would only take cores
    # from training. On a GPU the training process's CPU is what bounds a step (it queues the
    # kernels), and putting a batch together there took 25 ms on the H200 machine (torch's
    # multithreaded copy, contending with the decoding threads; benchmarks/train_step.py), against
    # under 1 ms for a single-threaded worker.
    return 1 if _accelerator(train_cfg, warn=False) == "gpu" else 0


def _accelerator(train_cfg: dict, warn: bool = True) -> str:
    if warn and train_cfg["accelerator"] == "gpu" and not torch.cuda.is_available():
        warnings.warn("training.accelerator is gpu but no CUDA device is visible; training on CPU")
        return "cpu"
    return "gpu" if train_cfg["accelerator"] in ("auto", "gpu") and torch.cuda.is_available() else "cpu"


def _devices(train_cfg: dict, accelerator: str) -> int:
    """How many devices (processes) train: ``training.num_gpus`` GPUs (at most those visible) on a
    GPU; on the CPU one process, or ``num_gpus`` DDP processes (gloo) when ``training.accelerator``
    is explicitly cpu, which tests multi-device training on machines without GPUs."""
    requested = max(1, train_cfg["num_gpus"])
    if accelerator == "gpu":
        visible = torch.cuda.device_count()
        if requested > visible:
            warnings.warn(f"training.num_gpus is {requested} but {visible} GPU(s) are visible; training on {visible}")
        return min(requested, visible)
    return requested if train_cfg["accelerator"] == "cpu" else 1


def _strategy(devices: int):
    """One device: Lightning's default. Several: DDP on one node, started by Lightning itself.

    ``start_method="popen"`` is the ``ddp`` strategy: the other ranks are new processes running this
    process's command line again (our entry point scripts/train.py, also as Snakemake's script),
    not forks (``ddp_fork``: no CUDA before the fork) or spawned functions (``ddp_spawn``: a pickled
    trainer, and results returned through files). Backend: NCCL on GPUs, gloo on CPU.

    The cluster environment (a Trainer plugin) is Lightning's own for one device as for several,
    never one detected from the job's surroundings: under SLURM, Lightning would expect one SLURM
    task per device (a one-task job must start its devices' processes itself) and, on one device,
    would install a SIGUSR1 handler that requeues the job with ``scontrol`` until training starts
    (Snakemake, not SLURM, reruns our jobs); where mpi4py is installed, detecting MPI imports and
    initialises it (0.53 s of every training's start on the H100 machine).

    ``broadcast_buffers=False``: DDP's default copies rank 0's buffers (batch-norm statistics) to
    every rank before each training step, one more collective and hundreds of small copies a step;
    training does not read those statistics, and the model copies them once before validation
    instead (:meth:`PoseModel.on_validation_epoch_start`)."""
    if devices == 1:
        return "auto"
    return DDPStrategy(start_method="popen", broadcast_buffers=False)


def _end_other_ranks(trainer, wait: bool, timeout: float = 60.0) -> None:
    """Rank 0 of a multi-device run: wait (up to ``timeout`` seconds each) until the processes it
    started for the other ranks have exited, so the job never ends before all of its processes,
    or, with ``wait=False``, kill them."""
    for process in getattr(trainer.strategy.launcher, "procs", None) or []:
        if not wait:
            process.kill()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("rank process %d still running %.0f s after training; killing it", process.pid, timeout)
            process.kill()


def tensorboard_version(folder: Path, resumed: bool) -> int:
    """The TensorBoard run (``version_N``) of this training: the latest one when it resumes (the
    run that wrote last.ckpt: a training started over removes it first), the next one when it
    starts over, so that the curves of a replaced model stay apart from the new ones."""
    versions = [int(p.name[len("version_") :]) for p in Path(folder).glob("version_*") if p.name[len("version_") :].isdigit()]
    if not versions:
        return 0
    return max(versions) if resumed else max(versions) + 1


class CheckpointFiles(TorchCheckpointIO):
    """Lightning's checkpoint reader and writer (best.ckpt, last.ckpt, ``fit(ckpt_path=...)``),
    through :func:`~lightning_pose_lib.checkpoints.load` (safe) and
    :func:`~lightning_pose_lib.checkpoints.save` (atomic)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        checkpoints.save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return checkpoints.load(path)
