"""Bad input of every kind stops the scripts with one line naming the file and exit status 2, and
leaves nothing that looks finished. Checkpoints that would run code when loaded are refused.

The scripts run in this process (their ``cli_main`` under :func:`lightning_pose_lib.cli.run`, as
their ``__main__`` does), on copies of one tiny model trained once; most cases stop before any
training. Read-only and full folders are small tmpfs mounts (root only; skipped elsewhere).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from conftest import ROOT, tiny_overrides
from lightning_pose_lib import checkpoints
from lightning_pose_lib.cli import run
from lightning_pose_lib.locks import model_lock


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = {name: script(name) for name in ("train", "predict", "evaluate")}


def run_script(name: str, args: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``scripts/<name>.py args``."""
    capsys.readouterr()
    try:
        run(lambda: SCRIPTS[name].cli_main([str(a) for a in args]), None)
        code = 0
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


# --- what the cases start from ------------------------------------------------------------------

@pytest.fixture(scope="session")
def trained(example_dir, tmp_path_factory) -> Path:
    """One tiny model (one epoch) with the predictions of one video in video_preds/."""
    from lightning_pose_lib.config import load_config
    from lightning_pose_lib.train import train

    model_dir = tmp_path_factory.mktemp("trained") / "model"
    cfg = load_config(overrides=tiny_overrides(example_dir, **{"training.max_epochs": 1, "training.limit_train_batches": 1, "data.video_dir": "videos"}))
    train(cfg, model_dir)
    SCRIPTS["predict"].predict_all(model_dir, [(example_dir / "videos/session0.mp4", model_dir / "video_preds/session0.csv", model_dir / "video_preds/session0.h5")])
    return model_dir


def copy_model(trained: Path, to: Path) -> Path:
    """A model folder to spoil: hard links to the trained one's files (spoil by replacing a file,
    never by writing into one)."""
    shutil.copytree(trained, to, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
    return to


def copy_dataset(example_dir: Path, to: Path) -> Path:
    """The example dataset with its own label file, image folders of links, and the videos."""
    to.mkdir(parents=True)
    shutil.copy(example_dir / "CollectedData.csv", to / "CollectedData.csv")
    shutil.copytree(example_dir / "labeled-data", to / "labeled-data", copy_function=os.symlink)
    (to / "videos").symlink_to(example_dir / "videos")
    return to


def edit_labels(csv: Path, edit: Callable[[list[list[str]]], list[list[str]]]) -> None:
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    csv.write_text("\n".join(",".join(row) for row in edit(rows)) + "\n")


def set_cell(row: int, column: int, value: str):
    def edit(rows):
        rows[row][column] = value
        return rows

    return edit


def replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def payload_checkpoint(path: Path, marker: Path) -> None:
    """A checkpoint whose unpickling would create ``marker`` (as any code could run)."""

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    torch.save({"state_dict": {}, "hyper_parameters": {}, "epoch": 0, "extra": Payload()}, path)


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    with open(folder / "filler", "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()


@pytest.fixture
def mounts():
    made: list[Path] = []
    yield made
    for folder in reversed(made):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# --- the cases ----------------------------------------------------------------------------------

@dataclass
class Setup:
    """One case: a script, its arguments, the file its error must name, and the folders in which
    nothing may look finished afterwards."""

    script: str
    args: list
    names: Path | str
    watch: list = field(default_factory=list)
    started: bool = False  # training got as far as writing its config and TRAINING status


@dataclass
class World:
    example: Path
    trained: Path
    tmp: Path
    mounts: list

    def dataset(self, edit=None) -> Path:
        data = copy_dataset(self.example, self.tmp / "data")
        if edit is not None:
            edit_labels(data / "CollectedData.csv", edit)
        return data

    def train(self, data: Path | None = None, *extra: str, model_dir: Path | None = None, **settings) -> Setup:
        data = data or self.dataset()
        model_dir = model_dir or self.tmp / "model"
        args = ["--model-dir", model_dir, *tiny_overrides(data, **{"training.max_epochs": 1, "training.limit_train_batches": 1, **settings}), *extra]
        return Setup("train", args, None, [model_dir])

    def model(self) -> Path:
        return copy_model(self.trained, self.tmp / "model")

    def predict(self, model_dir: Path | None = None, *extra, videos=None, out: Path | None = None) -> Setup:
        model_dir = model_dir or self.model()
        out = out or self.tmp / "preds"
        videos = videos or [self.example / "videos/session0.mp4"]
        return Setup("predict", ["--model-dir", model_dir, "--output-dir", out, *extra, *videos], None, [out, model_dir])

    def evaluate(self, model_dir: Path | None = None, *extra) -> Setup:
        model_dir = model_dir or self.model()
        return Setup("evaluate", ["--model-dir", model_dir, *extra], None, [model_dir])

    def mount(self, name: str, size: str, read_only: bool = False) -> Path:
        folder = self.tmp / name
        mount_tmpfs(folder, size, read_only)
        self.mounts.append(folder)
        return folder


def names(setup: Setup, path) -> Setup:
    setup.names = path
    return setup


def started(setup: Setup) -> Setup:
    setup.started = True
    return setup


def labels_case(edit):
    def make(w: World) -> Setup:
        data = w.dataset(edit)
        return names(w.train(data), data / "CollectedData.csv")

    return make


def image_case(content: bytes | None):
    def make(w: World) -> Setup:
        data = w.dataset()
        image = data / "labeled-data/session0/img00000003.png"
        image.unlink()
        if content is not None:
            image.write_bytes(content)
        return names(w.train(data), image)

    return make


def override_case(*overrides: str, named="command line"):
    def make(w: World) -> Setup:
        return names(w.train(w.dataset(), *overrides), named)

    return make


def predict_ckpt_case(content: bytes | None):
    def make(w: World) -> Setup:
        model_dir = w.model()
        best = model_dir / "checkpoints/best.ckpt"
        best.unlink()
        if content is not None:
            best.write_bytes(content)
        return names(w.predict(model_dir), best)

    return make


def predict_video_case(content: bytes | None):
    def make(w: World) -> Setup:
        video = w.tmp / "clip.mp4"
        if content is not None:
            video.write_bytes(content)
        return names(w.predict(videos=[video]), video)

    return make


def evaluate_table_case(edit, video_table=True):
    def make(w: World) -> Setup:
        model_dir = w.model()
        table = model_dir / ("video_preds/session0.csv" if video_table else "predictions.csv")
        lines = table.read_text().splitlines(keepends=True)
        replace(table, "".join(edit(lines)).encode())
        return names(w.evaluate(model_dir), table)

    return make


def checkpoint_bytes(w: World, fraction: float) -> bytes:
    data = (w.trained / "checkpoints/best.ckpt").read_bytes()
    return data[: int(len(data) * fraction)]


def status(w: World, text: str | None) -> Setup:
    model_dir = w.model()
    path = model_dir / "train_status.json"
    path.unlink()
    if text is not None:
        path.write_text(text)
    return names(w.predict(model_dir), path)


def locked_case(script_name: str):
    def make(w: World) -> Setup:
        setup = w.train() if script_name == "train" else w.predict()
        model_dir = Path(setup.args[1])
        model_dir.mkdir(parents=True, exist_ok=True)
        w.held = contextlib.ExitStack()
        w.held.enter_context(model_lock(model_dir))  # as another training would
        return names(setup, model_dir)

    return make


def readonly_model_dir(w: World) -> Setup:
    folder = w.mount("ro", "1m", read_only=True)
    return names(w.train(model_dir=folder / "model"), folder / "model")


def full_model_dir(w: World) -> Setup:
    folder = w.mount("full", "8m")  # the config and logs fit, a checkpoint does not
    return names(started(w.train(model_dir=folder / "model")), folder / "model/checkpoints/")


def full_before_start(w: World) -> Setup:
    folder = w.mount("full", "1m")
    (folder / "model").mkdir()
    fill(folder)
    return names(w.train(model_dir=folder / "model"), folder / "model/config.yaml")


def readonly_evaluate(w: World) -> Setup:
    folder = w.mount("ro", "16m")
    model_dir = folder / "model"
    shutil.copytree(w.trained, model_dir, ignore=shutil.ignore_patterns("checkpoints", "tb_logs", ".lock"))
    remount_read_only(folder)
    return names(w.evaluate(model_dir), model_dir)


def readonly_predict_output(w: World) -> Setup:
    out = w.mount("ro", "1m", read_only=True)
    return names(w.predict(out=out), out / "session0.csv")


def full_predict_output(w: World) -> Setup:
    out = w.mount("full", "1m")
    fill(out)
    return names(w.predict(out=out), out / "session0.csv")


def model_dir_is_file(w: World) -> Setup:
    path = w.tmp / "model"
    path.write_text("not a folder\n")
    return names(w.train(model_dir=path), path)


def truncated_last(w: World) -> Setup:
    model_dir = w.tmp / "model"
    (model_dir / "checkpoints").mkdir(parents=True)
    last = model_dir / "checkpoints/last.ckpt"
    last.write_bytes(checkpoint_bytes(w, 0.5))
    return names(started(w.train(model_dir=model_dir)), last)


def model_checkpoint_case(content_of: Callable[[World], bytes | None]):
    def make(w: World) -> Setup:
        path = w.tmp / "init.ckpt"
        content = content_of(w)
        if content is not None:
            path.write_bytes(content)
        return names(started(w.train(w.dataset(), f"model.checkpoint={path}")), path)

    return make


def semisupervised_without_videos(w: World) -> Setup:
    data = w.dataset()
    return names(started(w.train(data, "model.losses_to_use=[temporal]", "data.video_dir=no_videos")), data / "no_videos")


def evaluate_missing_predictions(w: World) -> Setup:
    path = w.tmp / "nothing.csv"
    return names(w.evaluate(None, "--predictions", path, "--metric", "temporal_norm"), path)


def evaluate_wrong_video(w: World) -> Setup:
    model_dir = w.model()
    video = w.tmp / "short.mp4"
    from lightning_pose_lib.video import open_video, write_video

    with open_video(w.example / "videos/session1.mp4", backend="pyav") as reader:
        write_video(video, reader.read_frames(range(20)), fps=reader.info.fps)
    table = model_dir / "video_preds/session0.csv"
    return names(w.evaluate(model_dir, "--predictions", table, "--metric", "temporal_norm", "--video", video), table)


def evaluate_without_config(w: World) -> Setup:
    model_dir = w.model()
    (model_dir / "config.yaml").unlink()
    return names(w.evaluate(model_dir), model_dir / "config.yaml")


def invalid_yaml(w: World) -> Setup:
    path = w.tmp / "bad.yaml"
    path.write_text("training: {max_epochs: [1,\n")
    return names(w.train(w.dataset(), "--config", path), path)


def config_not_mapping(w: World) -> Setup:
    path = w.tmp / "list.yaml"
    path.write_text("- training\n- model\n")
    return names(w.train(w.dataset(), "--config", path), path)


PNG_HEADER = b"\x89PNG\r\n\x1a\n"
CASES: dict[str, Callable[[World], Setup]] = {
    # labels
    "labels: file missing": lambda w: names(w.train(w.dataset(), "data.csv_file=nope.csv"), w.tmp / "data/nope.csv"),
    "labels: empty file": labels_case(lambda rows: []),
    "labels: header row missing": labels_case(lambda rows: rows[1:]),
    "labels: only the header rows": labels_case(lambda rows: rows[:3]),
    "labels: odd coordinate columns": labels_case(lambda rows: [row[:-1] for row in rows]),
    "labels: a cell is not a number": labels_case(set_cell(5, 3, "abc")),
    "labels: inf": labels_case(set_cell(5, 3, "inf")),
    "labels: -inf": labels_case(set_cell(6, 4, "-inf")),
    "labels: 1e400 overflows to inf": labels_case(set_cell(6, 4, "1e400")),
    "labels: far outside the image (9999)": labels_case(set_cell(7, 1, "9999")),
    "labels: far outside the image (1e6)": labels_case(set_cell(7, 2, "1e6")),
    "labels: far outside the image (negative)": labels_case(set_cell(8, 1, "-500")),
    "labels: one image labeled twice": labels_case(lambda rows: rows + [rows[4]]),
    "labels: an empty image path": labels_case(set_cell(4, 0, "")),
    "labels: duplicate keypoint names": labels_case(lambda rows: [rows[0], [rows[1][0], *[rows[1][1]] * (len(rows[1]) - 1)], *rows[2:]]),
    "labels: not text": lambda w: names(w.train(labels_binary(w)), w.tmp / "data/CollectedData.csv"),
    "labels: a folder": lambda w: names(w.train(w.dataset(), "data.csv_file=labeled-data"), w.tmp / "data/labeled-data"),
    "labels: other keypoint count than the config": lambda w: names(w.train(w.dataset(), "data.num_keypoints=3"), w.tmp / "data/CollectedData.csv"),
    # images
    "image: missing": image_case(None),
    "image: empty file": image_case(b""),
    "image: text": image_case(b"not an image\n"),
    "image: PNG signature only": image_case(PNG_HEADER),
    # videos
    "video: missing": predict_video_case(None),
    "video: empty file": predict_video_case(b""),
    "video: text": predict_video_case(b"not a video\n" * 100),
    "video: first half of the file": lambda w: predict_video_case((w.example / "videos/session1.mp4").read_bytes()[:30000])(w),
    "video: semi-supervised model without its video folder": semisupervised_without_videos,
    # configs and options
    "config: unknown key": override_case("training.max_epoch=3"),
    "config: wrong type": override_case("training.max_epochs=abc"),
    "config: unknown backbone": override_case("model.backbone=resnet9"),
    "config: batch size 0": override_case("training.train_batch_size=0"),
    "config: override without a value": override_case("training.max_epochs"),
    "config: train and validation fractions above 1": override_case("training.train_prob=0.9", "training.val_prob=0.5", named="config"),
    "config: dataset folder missing": lambda w: names(w.train(w.tmp / "no_data"), w.tmp / "no_data"),
    "config: file missing": lambda w: names(w.train(w.dataset(), "--config", w.tmp / "nope.yaml"), w.tmp / "nope.yaml"),
    "config: not YAML": invalid_yaml,
    "config: not a mapping": config_not_mapping,
    "option: predict --batch-size 0": lambda w: names(w.predict(None, "--batch-size", "0"), "--batch-size"),
    "option: predict --batch-size -3": lambda w: names(w.predict(None, "--batch-size", "-3"), "--batch-size"),
    "option: predict --backend unknown": lambda w: names(w.predict(None, "--backend", "opencv"), "--backend"),
    "option: predict --decoders 0": lambda w: names(w.predict(None, "--decoders", "0"), "--decoders"),
    "option: evaluate --metric unknown": lambda w: names(w.evaluate(None, "--predictions", w.trained / "predictions.csv", "--metric", "accuracy"), "--metric"),
    # checkpoints
    "checkpoint: best.ckpt missing": predict_ckpt_case(None),
    "checkpoint: best.ckpt empty": predict_ckpt_case(b""),
    "checkpoint: best.ckpt truncated": lambda w: predict_ckpt_case(checkpoint_bytes(w, 0.3))(w),
    "checkpoint: best.ckpt not a checkpoint": predict_ckpt_case(b"PK\x03\x04 not really a zip\n"),
    "checkpoint: best.ckpt holds a tensor, not a checkpoint": lambda w: predict_ckpt_case(tensor_bytes(w))(w),
    "checkpoint: training not completed": lambda w: status(w, '{"status": "TRAINING"}\n'),
    "checkpoint: training status missing": lambda w: status(w, None),
    "checkpoint: training status unreadable": lambda w: status(w, '{"status": "COMPL'),
    "checkpoint: last.ckpt truncated (resume)": truncated_last,
    "checkpoint: model.checkpoint missing": model_checkpoint_case(lambda w: None),
    "checkpoint: model.checkpoint truncated": model_checkpoint_case(lambda w: checkpoint_bytes(w, 0.2)),
    "checkpoint: backbone weights truncated": lambda w: names(started(w.train(w.dataset(), f"model.backbone_pretrained={truncated_weights(w)}")), truncated_weights(w)),
    # prediction tables read back by evaluation
    "table: video predictions cut to 27 of 60 frames": evaluate_table_case(lambda lines: lines[: 3 + 27]),
    "table: video predictions cut mid-row": evaluate_table_case(lambda lines: lines[:-5] + [lines[-5][: len(lines[-5]) // 2]]),
    "table: video predictions of another video": evaluate_wrong_video,
    "table: video predictions with rows out of order": evaluate_table_case(lambda lines: lines[:3] + [lines[4], lines[3]] + lines[5:]),
    "table: labeled predictions missing frames": evaluate_table_case(lambda lines: lines[:-4], video_table=False),
    "table: labeled predictions not a table": evaluate_table_case(lambda lines: ["hello\n", "world\n"], video_table=False),
    "table: --predictions file missing": evaluate_missing_predictions,
    "table: model folder without config.yaml": evaluate_without_config,
    # folders
    "folder: model folder is a file": model_dir_is_file,
    "folder: model folder locked by a training (train)": locked_case("train"),
    "folder: model folder locked by a training (predict)": locked_case("predict"),
    "folder: read-only model folder (train)": readonly_model_dir,
    "folder: full model folder before training": full_before_start,
    "folder: model folder fills up at the first checkpoint": full_model_dir,
    "folder: read-only model folder (evaluate)": readonly_evaluate,
    "folder: read-only prediction folder": readonly_predict_output,
    "folder: full prediction folder": full_predict_output,
}


def labels_binary(w: World) -> Path:
    data = w.dataset()
    (data / "CollectedData.csv").write_bytes(bytes(range(256)) * 8)
    return data


def tensor_bytes(w: World) -> bytes:
    path = w.tmp / "tensor.pt"
    torch.save(torch.zeros(3), path)
    return path.read_bytes()


def truncated_weights(w: World) -> Path:
    path = w.tmp / "weights.pth"
    if not path.exists():
        path.write_bytes(checkpoint_bytes(w, 0.1))
    return path


# --- what is checked ----------------------------------------------------------------------------

STARTED_FILES = {"config.yaml", "provenance.yaml", "train_status.json"}


def visible_files(folder: Path) -> dict[str, tuple]:
    """Files not hidden (temporary files and the lock start with a dot), with size and mtime."""
    found = {}
    if folder.is_dir():
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                found[str(rel)] = (path.stat().st_size, path.stat().st_mtime_ns)
    return found


def looks_finished(new: set[str], folder: Path, started: bool) -> list[str]:
    """New files that a user could take for results."""
    allowed = set()
    if started:
        allowed = {name for name in new if name in STARTED_FILES or name.startswith("tb_logs/") or name.startswith("pca_")}
        status = folder / "train_status.json"
        if status.exists():
            assert '"COMPLETED"' not in status.read_text()
    return sorted(new - allowed)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_with_one_line_naming_the_file(case, example_dir, trained, tmp_path, mounts, capsys):
    world = World(example_dir, trained, tmp_path, mounts)
    world.held = contextlib.ExitStack()
    setup = CASES[case](world)
    before = {folder: visible_files(folder) for folder in setup.watch}
    with world.held:
        code, err = run_script(setup.script, setup.args, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err[-3000:]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    assert str(setup.names) in errors[0], errors[0]
    for folder, files in before.items():
        after = visible_files(folder)
        changed = {name for name, stat in after.items() if files.get(name) != stat}
        assert not looks_finished(changed, folder, setup.started), (errors[0], looks_finished(changed, folder, setup.started))


# --- checkpoints that would run code -------------------------------------------------------------

def test_the_payload_runs_when_loaded_unsafely(tmp_path):
    """The test's payload is real: a plain ``torch.load`` of it creates the file."""
    marker = tmp_path / "ran"
    payload_checkpoint(tmp_path / "evil.ckpt", marker)
    torch.load(tmp_path / "evil.ckpt", weights_only=False)
    assert marker.exists()


def payload_for_predict(w: World, evil_dir: Path, marker: Path) -> Setup:
    model_dir = w.model()
    best = model_dir / "checkpoints/best.ckpt"
    best.unlink()
    payload_checkpoint(best, marker)
    return names(w.predict(model_dir), best)


def payload_for_resume(w: World, evil_dir: Path, marker: Path) -> Setup:
    model_dir = w.tmp / "model"
    (model_dir / "checkpoints").mkdir(parents=True)
    payload_checkpoint(model_dir / "checkpoints/last.ckpt", marker)
    return names(started(w.train(model_dir=model_dir)), model_dir / "checkpoints/last.ckpt")


def payload_for_model_checkpoint(w: World, evil_dir: Path, marker: Path) -> Setup:
    payload_checkpoint(evil_dir / "init.ckpt", marker)
    return names(started(w.train(w.dataset(), f"model.checkpoint={evil_dir / 'init.ckpt'}")), evil_dir / "init.ckpt")


def payload_for_backbone(w: World, evil_dir: Path, marker: Path) -> Setup:
    payload_checkpoint(evil_dir / "weights.pth", marker)
    return names(started(w.train(w.dataset(), f"model.backbone_pretrained={evil_dir / 'weights.pth'}")), evil_dir / "weights.pth")


@pytest.mark.parametrize("load", [payload_for_predict, payload_for_resume, payload_for_model_checkpoint, payload_for_backbone], ids=["predict", "resume", "model.checkpoint", "backbone weights"])
def test_a_checkpoint_that_would_run_code_is_refused_unrun(load, example_dir, trained, tmp_path, mounts, capsys):
    world = World(example_dir, trained, tmp_path, mounts)
    marker = tmp_path / "payload_ran"
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    setup = load(world, evil_dir, marker)
    code, err = run_script(setup.script, setup.args, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err[-3000:]
    assert str(setup.names) in errors[0] and "refused" in errors[0] and "(io.open)" in errors[0], errors[0]
    assert not marker.exists()
    assert not (setup.watch[0] / "predictions.csv").exists()


def test_checkpoints_written_by_training_load_safely(trained):
    """What training writes (weights, optimizer, schedule, loops, callbacks, random states) needs
    nothing beyond the allow-list; the model loads from it. best.ckpt holds the weights only."""
    last = checkpoints.load(trained / "checkpoints/last.ckpt")
    assert {"state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks", "hyper_parameters"} <= last.keys()
    assert "rng" in last["lightning_pose_lib"]
    best = checkpoints.load(trained / "checkpoints/best.ckpt")
    assert {"state_dict", "hyper_parameters"} <= best.keys() and "optimizer_states" not in best
    model = checkpoints.load_pose_model(trained / "checkpoints/best.ckpt")
    assert model.num_keypoints == 12


# --- warnings, not errors ------------------------------------------------------------------------

def test_keypoints_never_labeled_and_labels_just_outside_get_one_warning_each(example_dir, tmp_path, caplog):
    from lightning_pose_lib.config import load_config
    from lightning_pose_lib.dataset import load_dataset

    data = copy_dataset(example_dir, tmp_path / "data")

    def spoil(rows):
        for row in rows[3:]:
            row[23:25] = ["", ""]  # the last keypoint: never labeled
        rows[4][1] = "-3.5"  # x just left of the image
        rows[5][2] = "130"  # y just below the 256 x 128 image
        return rows

    edit_labels(data / "CollectedData.csv", spoil)
    with caplog.at_level("WARNING"):
        dataset = load_dataset(load_config(overrides=tiny_overrides(data)))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings
    assert "1 of 12 keypoints are labeled in none of the 40 frames (tail_tip_bot)" in warnings[0]
    assert "2 labeled keypoints lie just outside their image" in warnings[1]
    assert len(dataset.labels) == 40


def test_backbone_choices_in_the_schema_are_the_registry():
    from lightning_pose_lib.config import schema
    from lightning_pose_lib.models.backbones import list_backbones

    assert sorted(schema()["properties"]["model"]["properties"]["backbone"]["enum"]) == list_backbones()


# --- the workflow config -------------------------------------------------------------------------

def test_a_workflow_config_error_names_the_file_and_the_key(tmp_path):
    (tmp_path / "config").mkdir()
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["predikt"] = config.pop("predict")
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config))
    other = tmp_path / "other.yaml"
    other.write_text("datasets: {example: {data_dirr: x}}\n")
    base = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow/Snakefile"), "--directory", str(tmp_path), "-n"]
    for extra, named, key in [([], "config/config.yaml", "'predikt'"), (["--configfile", str(other)], str(other), "'datasets.example.data_dirr'")]:
        if extra:
            config["predict"] = config.pop("predikt")
            (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config))
        done = subprocess.run([*base, *extra], capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert done.returncode != 0
        # Snakemake's notes on the profile and the config files it uses, then ours; no schema dump
        assert len(lines) <= 3 and len(errors) == 1 and errors[0].startswith(f"error: {named}: unknown config key {key}"), lines
