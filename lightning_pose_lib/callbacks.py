"""Resumable training: stop cleanly on SIGTERM / SIGUSR1 and continue exactly where training stopped.

SLURM sends SIGTERM when a job is cancelled or reaches its time limit (SIGKILL follows after the
cluster's KillWait), and SIGUSR1 ahead of the limit when the job asks for it (``sbatch
--signal=USR1@120``, set in profiles/slurm). :class:`ResumableTraining` makes either signal finish the
running epoch, whose end writes ``checkpoints/last.ckpt`` (:class:`LastCheckpoint`, which otherwise
writes it on a time interval), and then end the process with status
128 + signal number, so that Snakemake records a failure and its rerun (or retry) resumes from
``last.ckpt`` with ``trainer.fit(ckpt_path=...)``.

A resumed run equals an uninterrupted one (same seed, same hardware) because checkpoints also carry
the random number generator states (torch, numpy, random, CUDA and the training data loaders'
shuffling generators), restored before the first resumed epoch. Not restored: the endless stream
of unlabeled video clips of the semi-supervised losses restarts from its seed after a resume.

Stopping at an epoch end instead of mid-epoch keeps that equality: a mid-epoch checkpoint would
repeat or skip batches when resumed. The price: after the signal, the running epoch must finish
within SLURM's grace time, otherwise SIGKILL ends the job and the rerun repeats that epoch (from
the previous epoch's last.ckpt) — nothing is lost beyond it.

Several devices (DDP): every rank installs the handlers (SLURM signals every process of the job;
a local ``kill`` reaches rank 0 only); at each epoch start the ranks agree (a max over them) on
whether any was signalled, so all stop at the same epoch end. Rank 0 exits with 128 + signal
number, the other ranks with status 0: Lightning's launcher in rank 0 watches the processes it
started and kills every process, rank 0 included, as soon as one ends with a non-zero status. Only
rank 0 writes files (checkpoints, through Lightning; the best-model backup, here); its checkpoint's
random number generator states are every rank's: all ranks seed and draw alike (their shuffling
generators draw one common order).

:func:`resume_checkpoint` decides whether a ``last.ckpt`` may be resumed: only when it was written
for the same resolved config. After a config edit, Snakemake reruns training; it must start over,
not continue the old model.

:class:`TrainingSpeed` times the steps and :class:`TrainingProgress` reports each epoch in the
training's log (see :mod:`~lightning_pose_lib.progress`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import checkpoints
from .progress import Reporter, duration, in_terminal, since_process_start

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
CHECKPOINT_KEY = "lightning_pose_lib"
BEST_BACKUP = "best.resume.ckpt"


def config_digest(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def resume_checkpoint(last: str | os.PathLike, cfg: dict) -> Path | None:
    """``last`` if training may resume from it, else None (after removing it and its best-model
    backup): it must have been written for this very config. A ``last.ckpt`` that cannot be read
    safely stops training (:class:`InputError`): checkpoints are written atomically, so such a file
    is not one of ours, and it is left for the user to look at."""
    last = Path(last)
    if not last.exists():
        return None
    stored = checkpoints.load(last).get(CHECKPOINT_KEY, {})
    if stored.get("config_sha256") == config_digest(cfg):
        return last
    log.warning("%s: not resuming, it was written for another config; training starts over", last)
    last.unlink()
    (last.parent / BEST_BACKUP).unlink(missing_ok=True)
    return None


class ResumableTraining(pl.Callback):
    """Checkpoints carry what an exact resume needs; SIGTERM/SIGUSR1 stop at the next epoch end."""

    def __init__(self, train_loader=None) -> None:
        # The training loader (DataLoader or CombinedLoader) whose shuffling generators are saved
        # and restored. Given here because Lightning draws the first resumed epoch's order before any
        # hook that could reach the loader through the trainer.
        self.train_loader = train_loader
        self.stop_signal: int | None = None
        self.stopping = 0  # the signal every rank stops on, agreed at an epoch end (0: none)
        self._previous_handlers: dict[int, object] = {}
        self._other_ranks: list = []

    # --- signals ---------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        # Installed here, after Lightning registered its own SIGTERM handler for this fit, which
        # stops mid-epoch and exits with status 0; ours replaces it for the duration of training.
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)
        # Rank 0 of a multi-device run: the processes it started for the other ranks.
        self._other_ranks = list(getattr(trainer.strategy.launcher, "procs", None) or [])
        if trainer.is_global_zero:
            self._restore_best_backup(trainer)

    def _on_signal(self, signum, frame) -> None:
        if self.stop_signal is not None:  # asked twice: stop now, the rerun repeats this epoch
            for process in self._other_ranks:  # they cannot go on without this process
                process.kill()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.stop_signal = signum
        log.warning("received %s: finishing this epoch, saving last.ckpt, then stopping", signal.Signals(signum).name)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.stopping:  # the previous epoch's end wrote last.ckpt (LastCheckpoint)
            code = 128 + self.stopping
            if trainer.is_global_zero:
                log.warning("stopping after epoch %d (exit status %d); a rerun resumes from last.ckpt", trainer.current_epoch - 1, code)
                raise SystemExit(code)
            raise SystemExit(0)  # rank 0 reports the stop (see the module docstring)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Every rank stops when any was signalled (the largest signal number names the status),
        # decided here, before the checkpoint callbacks (Lightning runs them after the others), so
        # that LastCheckpoint writes last.ckpt at this epoch's end when training stops after it.
        self.stopping = int(trainer.strategy.reduce(torch.tensor(self.stop_signal or 0, device=pl_module.device), reduce_op="max"))
        # Snakemake deletes best.ckpt (a declared output) when the job fails; a hard link keeps
        # its content for the resumed run. ModelCheckpoint callbacks run after this one, so best.ckpt
        # already holds this epoch's validation result here. Rank 0 writes the checkpoints.
        if not trainer.is_global_zero:
            return
        best = _best_path(trainer)
        if best is not None and best.exists():
            backup = best.parent / BEST_BACKUP
            if not backup.exists() or not os.path.samefile(best, backup):
                tmp = backup.with_suffix(".tmp")
                tmp.unlink(missing_ok=True)
                os.link(best, tmp)
                os.replace(tmp, backup)

    def _restore_best_backup(self, trainer) -> None:
        best = _best_path(trainer)
        if trainer.ckpt_path and best is not None and not best.exists() and (best.parent / BEST_BACKUP).exists():
            os.link(best.parent / BEST_BACKUP, best)
            log.info("restored %s from %s", best, BEST_BACKUP)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()

    # --- checkpoint contents --------------------------------------------------------------------
    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "config_sha256": config_digest(pl_module.cfg),
            "rng": _rng_states(_shuffling_generators(self.train_loader)),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        log.info("resuming training after epoch %d from its last checkpoint", checkpoint["epoch"])
        # Called before the loops run: nothing has drawn from the generators since the restore.
        states = checkpoint.get(CHECKPOINT_KEY, {}).get("rng")
        if states is not None:
            _set_rng_states(states, _shuffling_generators(self.train_loader))


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt``, everything a resume needs, at the end of an epoch when one is due: after
    the first epoch of a run, once ``interval_s`` seconds have passed since the previous write, at
    the last epoch, and when training stops on a signal (``resumable.stopping``). Writing it after
    every epoch cost a 134 MB file per epoch for a ResNet-50 (seconds per epoch on a small
    dataset); a training killed outright (SIGKILL) now repeats the epochs since the last write,
    and, resumed from the random states in the checkpoint, ends with the same model."""

    def __init__(self, dirpath, interval_s: float, resumable: ResumableTraining):
        super().__init__(dirpath=dirpath, filename="last", every_n_epochs=1, save_on_train_epoch_end=True, enable_version_counter=False)
        self.interval_s, self.resumable = interval_s, resumable
        self._written_at: float | None = None  # time.monotonic() of this run's latest write

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        final = trainer.current_epoch + 1 >= trainer.max_epochs or trainer.should_stop
        waited = self._written_at is None or time.monotonic() - self._written_at >= self.interval_s
        if final or waited or self.resumable.stopping:
            super().on_train_epoch_end(trainer, pl_module)
            self._written_at = time.monotonic()


class TrainingSpeed(pl.Callback):
    """Training steps per second in steady state: each epoch is timed from the end of its first
    step to the end of its last, which leaves out the loaders' start-up and the validation and
    checkpoints between epochs (the device is synchronised at those two points only). Each epoch's
    rate goes to TensorBoard as ``train_steps_per_s``; :meth:`steps_per_second` is the run's."""

    def __init__(self) -> None:
        self.epochs: list[tuple[int, float]] = []  # (steps, seconds) of each timed epoch
        self._start: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        last = batch_idx == trainer.num_training_batches - 1
        if batch_idx != 0 and not last:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        now = time.perf_counter()
        if batch_idx == 0:
            self._start = now
        elif self._start is not None:
            self.epochs.append((batch_idx, now - self._start))
            pl_module.log("train_steps_per_s", batch_idx / (now - self._start), on_step=False, on_epoch=True, rank_zero_only=True, batch_size=1)
            self._start = None

    def steps_per_second(self) -> float | None:
        """Over every timed epoch but the first (which pays for cuDNN's autotuning and the decoders'
        set-up) when there are several; None when no epoch had two steps."""
        timed = self.epochs[1:] or self.epochs
        seconds = sum(s for _, s in timed)
        return sum(n for n, _ in timed) / seconds if seconds > 0 else None


def _best_path(trainer) -> Path | None:
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is not None and callback.dirpath and callback.filename:
            return Path(callback.dirpath) / f"{callback.filename}{callback.FILE_EXTENSION}"
    return None


def _shuffling_generators(train_loader) -> list[torch.Generator]:
    """The generators that shuffle the training data (one per DataLoader), in a stable order."""
    loaders = getattr(train_loader, "flattened", None) or [train_loader]  # CombinedLoader or DataLoader
    found = []
    for loader in loaders:
        if isinstance(loader, DataLoader):
            generator = getattr(loader.sampler, "generator", None) or loader.generator
            if isinstance(generator, torch.Generator):
                found.append(generator)
    return found


def _rng_states(generators: list[torch.Generator]) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loaders": [g.get_state() for g in generators],
    }


def _set_rng_states(states: dict, generators: list[torch.Generator]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    for generator, state in zip(generators, states["loaders"]):
        generator.set_state(state)


class TrainingProgress(Reporter, pl.Callback):
    """After every epoch one line: the epoch, the training losses (as last logged: the values
    TensorBoard shows), the validation pixel error (the latest), steps/s and the time left (the
    epochs still to run at the mean duration of this run's epochs, validation included).
    ``speed`` is the run's :class:`TrainingSpeed`, which times the
    steps. ``bar``: a bar over the training's steps (default: when stderr is a terminal)."""

    def __init__(self, speed, bar: bool | None = None) -> None:
        self.speed = speed
        self.show_bar = in_terminal() if bar is None else bar
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0
        self._timed_epochs = 0
        self._validated = 0  # the epoch (from 1) of the latest validation
        self._first_step_done = False

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        steps = trainer.num_training_batches
        log.info("training epochs %d to %d, %s steps each", trainer.current_epoch + 1, trainer.max_epochs, steps)
        if self.show_bar:
            total = trainer.max_epochs * steps if math.isfinite(steps) else None
            self.bar = tqdm(total=total, initial=trainer.current_epoch * steps if total else 0, unit="step", desc="training", file=sys.stderr)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()
        self._timed_epochs = len(self.speed.epochs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if not self._first_step_done and trainer.is_global_zero:
            # The job's start ends here (TrainingSpeed, which runs first, has synchronised the
            # GPU); benchmarks/cold_start.py reads this line.
            self._first_step_done = True
            self.say(f"first training step done: {since_process_start()} s after the process started")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._validated = trainer.current_epoch + 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        epoch = trainer.current_epoch + 1  # counted from 1 for people
        parts = [f"epoch {epoch}/{trainer.max_epochs}"]
        losses = {name[len("train_") : -len("_loss")]: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("train_") and name.endswith("_loss")}
        total = losses.pop("total", None)
        if total is not None:  # and its parts, when there are several
            detail = ", ".join(f"{name} {value:.4g}" for name, value in losses.items())
            parts.append(f"loss {total:.4g}" + (f" ({detail})" if len(losses) > 1 else ""))
        error = trainer.callback_metrics.get("val_pixel_error")
        if error is not None and self._validated:
            parts.append(f"val pixel error {float(error):.2f} px" + (f" (epoch {self._validated})" if self._validated != epoch else ""))
        if len(self.speed.epochs) > self._timed_epochs:  # this epoch was timed
            steps, seconds = self.speed.epochs[-1]
            parts.append(f"{steps / seconds:.2f} steps/s")
        recent = self.epoch_seconds[1:] or self.epoch_seconds  # the first pays for the start-up
        parts.append(f"{duration(sum(recent) / len(recent) * (trainer.max_epochs - epoch))} left")
        self.say(" | ".join(parts))

    def on_train_end(self, trainer, pl_module) -> None:
        self.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.close()
