"""What a running training or prediction tells its user: plain lines in a log, a bar in a terminal.

Both report to stderr, which the workflow's jobs write to their log (``logs/<rule>/...``): there a
line per epoch of training (:class:`~lightning_pose_lib.callbacks.TrainingProgress`) and a line per video every few seconds of
prediction (:class:`VideoProgress`). When stderr is a terminal, a tqdm bar shows the same progress
and the lines are printed above it.
"""

from __future__ import annotations

import logging
import os
import sys
import time

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


def since_process_start() -> str:
    """Seconds since this process started (Linux: /proc), to two decimals; "?" elsewhere. The
    lines that end a job's start and its work carry it (benchmarks/cold_start.py reads them)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
            return f"{float(uptime.read().split()[0]) - started:.2f}"
    except (OSError, ValueError, IndexError):
        return "?"


class Reporter:
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


class VideoProgress(Reporter):
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
