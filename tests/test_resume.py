"""Interrupted training resumes exactly; a killed prediction leaves nothing that looks complete.

Real processes and real signals: scripts/train.py and scripts/predict.py run as subprocesses on the
small generated example and are stopped with SIGTERM / SIGUSR1 / SIGKILL.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tiny_overrides
from lightning_pose_lib import checkpoints
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.video import probe_video

EPOCHS = 3


def start_training(model_dir: Path, data_dir: Path, **extra) -> subprocess.Popen:
    # Small batches: epochs long enough (about a second) for a signal to land inside one.
    settings = {"training.max_epochs": EPOCHS, "training.min_epochs": EPOCHS, "training.train_batch_size": 4, **extra}
    overrides = tiny_overrides(data_dir, **settings)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/train.py"), "--model-dir", str(model_dir), *overrides],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"process ended before {path} appeared:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def tensorboard_runs(model_dir: Path) -> dict[str, int]:
    """{version folder: number of event files}."""
    return {run.name: len(list(run.glob("events.out.tfevents.*"))) for run in sorted((model_dir / "tb_logs").iterdir())}


def weights(ckpt: Path) -> dict:
    checkpoint = checkpoints.load(ckpt)
    return {"epoch": checkpoint["epoch"], "state_dict": checkpoint["state_dict"], "optimizer": checkpoint.get("optimizer_states")}  # best.ckpt: weights only


def assert_same(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name in a["state_dict"]:
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name
    assert str(a["optimizer"]) == str(b["optimizer"])


@pytest.fixture(scope="module")
def uninterrupted(example_dir, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("uninterrupted")
    process = start_training(model_dir, example_dir)
    writes = []  # each write of last.ckpt is a new file (written under a temporary name, renamed)
    watcher = threading.Thread(target=watch_writes, args=(model_dir / "checkpoints/last.ckpt", process, writes))
    watcher.start()
    code, out = finish(process)
    watcher.join()
    assert code == 0, out[-3000:]
    (model_dir / "last_ckpt_writes.json").write_text(json.dumps(len(writes)))
    return model_dir


def watch_writes(path: Path, process: subprocess.Popen, writes: list) -> None:
    while process.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            if (stat.st_ino, stat.st_mtime_ns) not in writes:  # an inode number may be reused
                writes.append((stat.st_ino, stat.st_mtime_ns))
        time.sleep(0.01)


def test_last_checkpoint_after_the_first_epoch_and_at_the_end_only(uninterrupted):
    # The default interval (training.last_checkpoint_minutes) is far longer than this training.
    assert json.loads((uninterrupted / "last_ckpt_writes.json").read_text()) == 2
    assert weights(uninterrupted / "checkpoints/last.ckpt")["epoch"] == EPOCHS - 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_stops_at_epoch_end_and_rerun_resumes_to_the_same_model(signum, uninterrupted, example_dir, tmp_path):
    model_dir = tmp_path / "model"
    process = start_training(model_dir, example_dir)
    wait_for(model_dir / "checkpoints/last.ckpt", process)  # epoch 0 done: the signal lands in epoch 1
    process.send_signal(signum)
    code, out = finish(process)
    assert code == 128 + signum, out[-3000:]
    stopped_at = checkpoints.load(model_dir / "checkpoints/last.ckpt")["epoch"]
    assert stopped_at < EPOCHS - 1 and "stopping after epoch" in out, out[-3000:]
    assert not (model_dir / "predictions.csv").exists()
    # As Snakemake does after a failed job: its declared outputs are deleted before the rerun.
    (model_dir / "checkpoints/best.ckpt").unlink()

    code, out = finish(start_training(model_dir, example_dir))
    assert code == 0, out[-3000:]
    assert f"resuming training after epoch {stopped_at} from its last checkpoint" in out
    for name in ("last.ckpt", "best.ckpt"):
        assert_same(weights(model_dir / "checkpoints" / name), weights(uninterrupted / "checkpoints" / name))
    # The resumed run continues the TensorBoard run of the interrupted one: one version, two event files.
    assert tensorboard_runs(model_dir) == {"version_0": 2}
    # Its log (not a terminal) has one line per remaining epoch and no progress bar.
    lines = [line for line in out.splitlines() if " | loss " in line]
    assert [line.split(" INFO epoch ")[1].split(" | ")[0] for line in lines] == [f"{e}/{EPOCHS}" for e in range(stopped_at + 2, EPOCHS + 1)], out[-3000:]
    assert "val pixel error" in lines[-1] and "steps/s" in lines[-1] and lines[-1].endswith("| 0 s left")
    assert "step/s]" not in out and "%|" not in out


def test_sigkill_mid_epoch_resumes_from_the_previous_epoch_end(uninterrupted, example_dir, tmp_path):
    model_dir = tmp_path / "model"
    process = start_training(model_dir, example_dir)
    wait_for(model_dir / "checkpoints/last.ckpt", process)
    process.kill()
    finish(process)
    code, out = finish(start_training(model_dir, example_dir))
    assert code == 0, out[-3000:]
    assert_same(weights(model_dir / "checkpoints/last.ckpt"), weights(uninterrupted / "checkpoints/last.ckpt"))


def test_a_changed_config_starts_over_instead_of_resuming(uninterrupted, example_dir, tmp_path):
    model_dir = tmp_path / "model"
    (model_dir / "checkpoints").mkdir(parents=True)
    # last.ckpt of a model trained with another learning rate, as after editing the config.
    (model_dir / "checkpoints/last.ckpt").write_bytes((uninterrupted / "checkpoints/last.ckpt").read_bytes())
    shutil.copytree(uninterrupted / "tb_logs", model_dir / "tb_logs")  # and its TensorBoard run
    code, out = finish(start_training(model_dir, example_dir, **{"training.optimizer_params.learning_rate": 0.0005}))
    assert code == 0, out[-3000:]
    assert "written for another config; training starts over" in out
    assert "resuming training" not in out
    assert weights(model_dir / "checkpoints/last.ckpt")["epoch"] == EPOCHS - 1
    # A training started over is a new TensorBoard run beside the replaced one.
    assert tensorboard_runs(model_dir) == {"version_0": 1, "version_1": 1}


def test_killed_prediction_leaves_no_complete_looking_output(uninterrupted, example_dir, tmp_path):
    out_dir = tmp_path / "preds"
    videos = [example_dir / "videos" / "session0.mp4"]
    for i in range(6):  # more videos after the first than can be predicted while the kill lands
        videos.append(tmp_path / f"copy{i}.mp4")
        videos[-1].symlink_to(example_dir / "videos" / "session1.mp4")
    # one decoder: the videos are predicted one after the other, so the kill lands between them
    command = [sys.executable, str(ROOT / "scripts/predict.py"), "--model-dir", str(uninterrupted), "--output-dir", str(out_dir), "--decoders", "1", *map(str, videos)]
    # its own process group, killed whole as SLURM kills a job (the files are written by processes of its own)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True)
    wait_for(out_dir / "session0.csv", process)  # kill while the other outputs are being made
    os.killpg(process.pid, signal.SIGKILL)
    finish(process)
    frames = {v.stem: probe_video(v).num_frames for v in videos}
    left = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
    assert "copy5.csv" not in left
    for name in left:  # whatever is there is complete
        assert len(read_pose_table(out_dir / name)) == frames[Path(name).stem], name
    rerun = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for video in videos:
        for suffix in (".csv", ".h5"):
            assert len(read_pose_table(out_dir / f"{video.stem}{suffix}")) == frames[video.stem]


@pytest.fixture
def other_file_system(tmp_path):
    """A folder on a file system of its own (a tmpfs mount), as a cluster's results folder is
    another file system than the node's /tmp."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder = tmp_path / "mnt"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def temporary_checkpoints(folder: Path) -> list[str]:
    return [entry.name for entry in os.scandir(folder) if entry.name.startswith(".") and ".tmp" in entry.name]


def test_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(uninterrupted, example_dir, other_file_system):
    model_dir = other_file_system / "model"
    ckpt_dir = model_dir / "checkpoints"
    every_epoch = {"training.last_checkpoint_minutes": 0}  # last.ckpt after each epoch: more writes to catch
    process = start_training(model_dir, example_dir, **every_epoch)
    wait_for(ckpt_dir / "last.ckpt", process)  # epoch 0 is saved; kill during a later write
    while not (caught := temporary_checkpoints(ckpt_dir)):
        assert process.poll() is None, "training ended before a checkpoint write was caught"
    process.kill()
    finish(process)
    assert temporary_checkpoints(ckpt_dir), f"the kill came after the write of {caught} had ended"
    for ckpt in ckpt_dir.glob("[!.]*.ckpt"):  # every checkpoint under its final name is complete
        assert checkpoints.load(ckpt)["epoch"] < EPOCHS - 1, ckpt

    code, out = finish(start_training(model_dir, example_dir, **every_epoch))
    assert code == 0, out[-3000:]
    assert "resuming training after epoch" in out
    assert not temporary_checkpoints(ckpt_dir)  # the killed write's leftovers are gone
    for name in ("last.ckpt", "best.ckpt"):
        assert_same(weights(ckpt_dir / name), weights(uninterrupted / "checkpoints" / name))
