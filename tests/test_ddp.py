"""Multi-device training (Lightning DDP on one node), on the CPU: 2 processes talking through gloo.

``training.accelerator=cpu training.num_gpus=2`` makes scripts/train.py train with the same ``ddp``
strategy as on 2 GPUs: Lightning starts the script a second time for rank 1. A semi-supervised
loss, so that each rank's unlabeled clip loader runs too. The unit tests below check the pieces
that make the ranks agree: the sharded labeled sampler, the per-rank clip seeds, the strategy.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pytorch_lightning.strategies import DDPStrategy
from torch.utils.data import RandomSampler

from conftest import ROOT, tiny_overrides
from lightning_pose_lib import checkpoints
from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.unlabeled import pipeline_seeds
from lightning_pose_lib.data.labels import read_labels, read_pose_table
from lightning_pose_lib.models.pose_model import PoseModel
from lightning_pose_lib.predict import load_model, predict_video
from lightning_pose_lib.train import ShardedRandomSampler, _devices, _strategy, _train_loader, num_workers, unlabeled_seed

EPOCHS = 3
DDP = {
    "data.image_resize_dims.height": 64,
    "data.image_resize_dims.width": 64,
    "training.accelerator": "cpu",
    "training.num_gpus": 2,
    "training.min_epochs": EPOCHS,
    "training.max_epochs": EPOCHS,
    "training.train_batch_size": 2,
    "data.video_dir": "videos",
    "model.losses_to_use": "[temporal]",
    "dali.base.train.sequence_length": 4,
    "callbacks.anneal_weight.freeze_until_epoch": 0,
}


def start_training(model_dir: Path, data_dir: Path) -> subprocess.Popen:
    # One thread per process: 2 processes on 2 cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/train.py"), "--model-dir", str(model_dir), *tiny_overrides(data_dir, **DDP)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    # Rank 1 inherits the pipe: communicate() returns once every rank's process has exited.
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


@pytest.fixture(scope="module")
def ddp_model(example_dir, tmp_path_factory) -> tuple[Path, str]:
    model_dir = tmp_path_factory.mktemp("ddp")
    code, out = finish(start_training(model_dir, example_dir))
    assert code == 0, out[-4000:]
    return model_dir, out


def test_two_processes_train_one_model(ddp_model, example_dir):
    model_dir, out = ddp_model
    # Two processes, one world of size 2, through gloo.
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in out
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in out
    assert "distributed_backend=gloo" in out and "Starting with 2 processes" in out
    assert "global rank 1 of world size 2" in out
    # Rank 0 alone reports and writes.
    assert out.count('"test_pixel_error"') == 1
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["best.ckpt", "best.resume.ckpt", "last.ckpt"]
    assert len(list((model_dir / "tb_logs").rglob("events.out.tfevents.*"))) == 1
    status = json.loads((model_dir / "train_status.json").read_text())
    assert status["status"] == "COMPLETED" and status["epochs"] == EPOCHS and status["train_steps_per_s"] > 0
    last = checkpoints.load(model_dir / "checkpoints/last.ckpt")
    assert last["epoch"] == EPOCHS - 1
    # 10 steps per epoch (the semi-supervised minimum), each of 2 labeled frames per rank.
    assert last["global_step"] == 10 * EPOCHS
    table = read_pose_table(model_dir / "predictions.csv")
    assert list(table.index) == read_labels(example_dir / "CollectedData.csv").image_paths
    assert set(table[("set", "", "")]) == {"train", "validation", "test"}


def test_ddp_checkpoint_predicts(ddp_model, example_dir, tmp_path):
    model_dir, _ = ddp_model
    model = load_model(model_dir)  # best.ckpt: plain weights, no DDP wrapper prefixes
    assert not any(name.startswith("module.") for name in model.state_dict())
    table = predict_video(model, example_dir / "videos/session0.mp4", tmp_path / "s0.csv", batch_size=16, progress=False)
    assert len(table) == 60
    assert np.isfinite(table.to_numpy()).all()


def test_signal_stops_every_rank_and_the_rerun_resumes(example_dir, tmp_path):
    model_dir = tmp_path / "model"
    process = start_training(model_dir, example_dir)
    last = model_dir / "checkpoints/last.ckpt"
    while not last.exists():  # epoch 0 done: the signal lands in a later epoch
        assert process.poll() is None, process.communicate()[0][-4000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # to rank 0 only, as a local kill; SLURM signals both ranks
    code, out = finish(process)
    assert code == 128 + signal.SIGTERM, out[-4000:]
    stopped = re.search(r"stopping after epoch (\d+)", out)
    assert stopped and int(stopped[1]) < EPOCHS - 1, out[-4000:]
    assert not (model_dir / "predictions.csv").exists()

    code, out = finish(start_training(model_dir, example_dir))
    assert code == 0, out[-4000:]
    assert out.count(f"resuming training after epoch {stopped[1]} from its last checkpoint") == 2  # both ranks
    assert json.loads((model_dir / "train_status.json").read_text())["status"] == "COMPLETED"
    assert checkpoints.load(last)["epoch"] == EPOCHS - 1


def test_scaling_benchmark_trains_on_one_device_then_on_two(example_dir, tmp_path):
    # benchmarks/ddp_scaling.py with CPU processes: the same global batch, 8 labeled frames and a
    # clip of 8, in one process and then halved between two.
    command = [sys.executable, str(ROOT / "benchmarks/ddp_scaling.py"), "--cpu", "--data", str(example_dir), "--out", str(tmp_path),
               "--gpus", "2", "--batch", "8", "--clip", "8", "--epochs", "2", "--backbone", "resnet18", "--size", "64"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    figures = json.loads((tmp_path / "ddp_scaling.json").read_text())
    assert figures["global_batch"] == {"labeled": 8, "unlabeled": 8}
    one, two = figures["runs"]["1"], figures["runs"]["2"]
    assert one["train_steps_per_s"] > 0 and two["train_steps_per_s"] > 0 and one["epochs"] == two["epochs"] == 2
    assert figures["ratio"] == pytest.approx(two["train_steps_per_s"] / one["train_steps_per_s"])
    assert "2 GPUs / 1 GPU:" in out.stdout
    for gpus, batch, clip in ((1, 8, 8), (2, 4, 4)):  # what each run trained with, per device
        saved = yaml.safe_load((tmp_path / f"gpus{gpus}/config.yaml").read_text())
        assert (saved["training"]["num_gpus"], saved["training"]["train_batch_size"], saved["dali"]["base"]["train"]["sequence_length"]) == (gpus, batch, clip)
    assert "global rank 1 of world size 2" in (tmp_path / "gpus2.log").read_text()


# --- the pieces, without processes --------------------------------------------------------------


@pytest.mark.parametrize("n, num_samples", [(10, 5), (10, 7), (7, 20)])
def test_sharded_sampler_splits_one_order_between_ranks(n, num_samples):
    world = 2
    shares = [list(ShardedRandomSampler(range(n), num_samples, torch.Generator().manual_seed(3), rank, world)) for rank in range(world)]
    assert [len(s) for s in shares] == [num_samples] * world
    order = list(RandomSampler(range(n), num_samples=num_samples * world, generator=torch.Generator().manual_seed(3)))
    assert sorted(shares[0] + shares[1]) == sorted(order)  # together: the single-device order
    for start in range(0, len(order), n):  # within a pass over the data, no frame twice
        assert len(set(order[start : start + n])) == len(order[start : start + n])


def test_sharded_sampler_advances_its_generator_alike_on_every_rank():
    generators = [torch.Generator().manual_seed(0) for _ in range(2)]
    samplers = [ShardedRandomSampler(range(9), 6, g, rank, 2) for rank, g in enumerate(generators)]
    next(iter(samplers[0]))  # rank 0 stops early (an interrupted epoch), rank 1 runs through
    list(samplers[1])
    assert torch.equal(generators[0].get_state(), generators[1].get_state())


def test_supervised_loader_gives_each_rank_its_own_batches(example_dir):
    cfg = load_config(overrides=tiny_overrides(example_dir, **{"training.train_batch_size": 4}))
    frames = list(range(30))
    batches = [[b.tolist() for b in _train_loader(cfg, None, frames, (64, 64), rank=r, world_size=2)] for r in range(2)]
    assert len(batches[0]) == len(batches[1]) == 3  # 30 frames // (4 per device x 2 devices)
    assert all(len(b) == 4 for b in batches[0] + batches[1])  # train_batch_size is per device
    seen = [i for rank in batches for b in rank for i in b]
    assert len(seen) == len(set(seen)) == 24


def test_each_rank_draws_its_own_unlabeled_clips():
    assert unlabeled_seed(123456, 0) == 123456  # one device: the clips it always drew
    seeds = {unlabeled_seed(123456, rank) for rank in range(8)}
    assert len(seeds) == 8
    # and each of a rank's clip pipelines its own clips, none another rank's
    assert pipeline_seeds(123456, 1) == [123456]
    every = [s for rank in range(8) for s in pipeline_seeds(unlabeled_seed(123456, rank), 4)]
    assert len(set(every)) == len(every) == 32


def test_num_gpus_means_cpu_processes_only_with_an_explicit_cpu_accelerator():
    assert _devices({"num_gpus": 2, "accelerator": "cpu"}, "cpu") == 2
    assert _devices({"num_gpus": 2, "accelerator": "auto"}, "cpu") == 1
    assert _devices({"num_gpus": 0, "accelerator": "cpu"}, "cpu") == 1
    assert _strategy(1) == "auto"
    strategy = _strategy(2)
    assert isinstance(strategy, DDPStrategy) and strategy._start_method == "popen"
    assert strategy.cluster_environment is None  # the Trainer's plugin, LightningEnvironment (test_train_predict.py)
    assert strategy._ddp_kwargs == {"broadcast_buffers": False}  # see test_every_rank_validates_rank_0s_statistics


def _validation_start_on_rank(rank: int, store: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = PoseModel(load_config(overrides=["model.backbone=resnet18", "model.backbone_pretrained=false"]), num_keypoints=2)
    with torch.no_grad():  # each rank's statistics followed its own batches
        for name, buffer in model.named_buffers():
            if "running" in name:
                buffer.add_(rank + 1.0)
    model.on_validation_epoch_start()
    torch.save({name: b for name, b in model.named_buffers()}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_every_rank_validates_rank_0s_statistics(tmp_path):
    """DDP runs without broadcasting buffers each step; before validation every rank takes rank 0's
    batch-norm statistics, so all ranks validate the model that rank 0 checkpoints."""
    torch.multiprocessing.spawn(_validation_start_on_rank, args=(str(tmp_path / "store"), str(tmp_path / "buffers")), nprocs=2)
    rank0, rank1 = (checkpoints.load(tmp_path / f"buffers.{rank}") for rank in (0, 1))
    assert rank0.keys() == rank1.keys() and any("running_mean" in name for name in rank0)
    for name in rank0:
        torch.testing.assert_close(rank1[name], rank0[name], msg=name)
    assert torch.equal(rank0["backbone.net.bn1.running_var"], torch.ones(64) + 1.0)  # rank 0's own, not rank 1's


def test_labeled_batches_are_put_together_in_a_worker_on_gpus_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert num_workers({"num_workers": None, "accelerator": "auto"}) == 1
    assert num_workers({"num_workers": None, "accelerator": "cpu"}) == 0
    assert num_workers({"num_workers": 3, "accelerator": "auto"}) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert num_workers({"num_workers": None, "accelerator": "gpu"}) == 0
