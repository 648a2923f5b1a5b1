"""Progress of training and prediction: lines in logs, bars in a terminal (scripts run under a pty)."""

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import ROOT, tiny_overrides
from lightning_pose_lib.progress import VideoProgress, duration


def test_duration_reads_as_people_write_it():
    assert [duration(s) for s in (0, 42.4, 200, 3725)] == ["0 s", "42 s", "3 min 20 s", "1 h 02 min"]


def test_video_progress_lines_say_frames_per_second_and_time_left(caplog):
    caplog.set_level(logging.INFO, logger="lightning_pose_lib.progress")
    progress = VideoProgress(videos=2, bar=False, every=0.0)
    progress.start(7, "a.mp4", 100)
    progress.update(7, 40)
    progress.update(7, 60)
    progress.done(7)
    middle, last = caplog.messages
    assert middle.startswith("a.mp4: 40/100 frames, ") and " frames/s, " in middle and middle.endswith(" left")
    assert last.startswith("a.mp4: 100 frames predicted in ") and last.endswith("frames/s); 1/2 videos done")


def in_terminal(command: list[str], timeout: float = 600) -> str:
    """Run ``command`` with its stdout and stderr on a pseudo-terminal; return what it printed."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size: 24 x 100
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, cwd=ROOT, close_fds=True)
    os.close(child)
    out = bytearray()
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child side closed: the process ended
            break
        if not data:
            break
        out += data
    os.close(main)
    assert process.wait(timeout=timeout) == 0, out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


@pytest.fixture(scope="module")
def terminal_training(example_dir, tmp_path_factory) -> tuple[Path, str]:
    model_dir = tmp_path_factory.mktemp("terminal")
    out = in_terminal([sys.executable, str(ROOT / "scripts/train.py"), "--model-dir", str(model_dir), *tiny_overrides(example_dir)])
    return model_dir, out


def test_training_in_a_terminal_shows_a_bar_and_a_line_per_epoch(terminal_training):
    _, out = terminal_training
    assert "training: 100%" in out and ("step/s]" in out or "s/step]" in out), out[-3000:]
    assert "epoch 1/2 | loss " in out and "epoch 2/2 | loss " in out


def test_prediction_in_a_terminal_shows_a_bar_and_a_line_per_video(terminal_training, example_dir, tmp_path):
    model_dir, _ = terminal_training
    videos = [str(example_dir / "videos" / f"session{i}.mp4") for i in range(2)]
    out = in_terminal([sys.executable, str(ROOT / "scripts/predict.py"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path), *videos])
    assert "2/2 videos: 100%" in out and ("frame/s]" in out or "s/frame]" in out), out[-3000:]
    for name in ("session0.mp4", "session1.mp4"):
        assert f"{name}: 60 frames predicted in " in out
