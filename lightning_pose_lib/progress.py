"""What a running training or prediction tells its user: plain lines in a log, a bar in a terminal.

Both report to stderr, which the workflow's jobs write to their log (``logs/<rule>/...``): there a
line per epoch of training (:class:`TrainingProgress`) and a line per video every few seconds of
prediction (:class:`VideoProgress`). When stderr is a terminal, a tqdm bar shows the same progress
and the lines are printed above it.
"""

from __future__ import annotations

import logging
import math
import sys
import time

import pytorch_lightning as pl
from tqdm import tqdm

log = logging.getLogger(__name__)


def in_terminal() -> bool:
    return sys.stderr.isatty()


def duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 20 s``, ``42 s``."""
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class _Reporter:
    """Lines to the log, or above the bar when there is one."""

    bar: tqdm | None = None

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            log.info("%s", line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainingProgress(_Reporter, pl.Callback):
    """After every epoch one line: the epoch, the training losses (as last logged: the values
    TensorBoard shows), the validation pixel error (the latest), steps/s and the time left (the
    epochs still to run at the mean duration of this run's epochs, validation included).
    ``speed`` is the run's :class:`~lightning_pose_lib.callbacks.TrainingSpeed`, which times the
    steps. ``bar``: a bar over the training's steps (default: when stderr is a terminal)."""

    def __init__(self, speed, bar: bool | None = None) -> None:
        self.speed = speed
        self.show_bar = in_terminal() if bar is None else bar
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0
        self._timed_epochs = 0
        self._validated = 0  # the epoch (from 1) of the latest validation

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


class VideoProgress(_Reporter):
    """Progress of each video of a prediction: frames done, frames/s and time left, every
    ``every`` seconds per video and when it is done; in a terminal a bar over the frames of the
    videos started so far."""

    def __init__(self, videos: int, enabled: bool = True, bar: bool | None = None, every: float = 10.0) -> None:
        self.enabled, self.videos, self.every = enabled, videos, every
        self.running: dict[object, list] = {}  # key -> [name, frames, done, started, last line]
        self.finished = 0
        if enabled and (in_terminal() if bar is None else bar):
            self.bar = tqdm(total=0, unit="frame", desc=f"0/{videos} videos", file=sys.stderr)

    def start(self, key, name: str, frames: int) -> None:
        now = time.perf_counter()
        self.running[key] = [name, frames, 0, now, now]
        if self.bar is not None:
            self.bar.total += frames
            self.bar.refresh()

    def update(self, key, count: int) -> None:
        if not self.enabled or key not in self.running:
            return
        video = self.running[key]
        video[2] += count
        if self.bar is not None:
            self.bar.update(count)
        now = time.perf_counter()
        if now - video[4] >= self.every and video[2] < video[1]:
            video[4] = now
            name, frames, done, started, _ = video
            rate = done / (now - started)
            self.say(f"{name}: {done}/{frames} frames, {rate:.0f} frames/s, {duration((frames - done) / rate)} left")

    def done(self, key) -> None:
        if not self.enabled or key not in self.running:
            return
        name, frames, done, started, _ = self.running.pop(key)
        self.finished += 1
        seconds = time.perf_counter() - started
        self.say(f"{name}: {done} frames predicted in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} frames/s); {self.finished}/{self.videos} videos done")
        if self.bar is not None:
            self.bar.set_description(f"{self.finished}/{self.videos} videos")
