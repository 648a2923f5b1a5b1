"""The workflow on a real SLURM cluster, through profiles/slurm.

Needs a running cluster (CI starts a one-node cluster with scripts/slurm/start_local_cluster.sh);
skipped otherwise. The profile used is profiles/slurm itself with its site values (partition,
memory, CPUs) set for the one small node; its GPU requests stay, and the CI node declares fake GPUs
so that they are granted (training and prediction then run on the CPU).

Snakemake always runs under `timeout`: when it loses track of its SLURM jobs it can wait forever.
"""

import copy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from test_workflow import TINY_MODEL, workdir_with

from lightning_pose_lib import checkpoints


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(state in out.stdout for state in ("idle", "mixed", "allocated"))


pytestmark = pytest.mark.skipif(not cluster_is_up(), reason="no SLURM cluster (start one with scripts/slurm/start_local_cluster.sh)")

MODEL = "results/example/models/supervised__seed=0"
CONFIG = {
    "model_config": "config/model.yaml",
    "datasets": {"example": {"data_dir": "resources/example", "example": {"seed": 0, "sessions": 2, "frames": 40, "labeled": 40}}},
    "variants": {"supervised": {"model_config": {"model": {"model_type": "heatmap"}}}},
}
# Long enough (about 20 s on the 2-core CI machine) to cancel the training job while it runs. Not
# longer: with the profile's first status check after 5 s, the SLURM plugin checks a job 5, 20, 45,
# 80 s after submitting it (10 s more each time nothing ended), and 40 epochs ended a resumed
# training just after the 45 s check, so the run waited until 80 s for it.
EPOCHS = 20
TARGETS = [f"{MODEL}/video_preds/session{i}.csv" for i in range(2)]  # train, predict_videos, make_example


def ci_profile(folder: Path) -> Path:
    """profiles/slurm with the site values of the CI node: partition, small memory, one CPU."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile.update({"jobs": 4, "latency-wait": 5, "retries": 0, "slurm-init-seconds-before-status-checks": 5, "slurm-keep-successful-logs": True})
    partition = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True).stdout.split()[0].rstrip("*")
    profile["default-resources"].update(slurm_partition=partition, mem_mb="1000 * attempt", cpus_per_task=1)
    for rule, resources in profile["set-resources"].items():
        assert resources.get("gpu") == 1, rule  # the GPU rules keep asking for a GPU
        resources.update(slurm_partition=partition, mem_mb="2000 * attempt", cpus_per_task=1)
    profile["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def snakemake(workdir: Path, profile: Path, timeout: int = 400) -> subprocess.Popen:
    command = ["timeout", "-k", "30", str(timeout), sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow/Snakefile"),
               "--directory", str(workdir), "--profile", str(profile), "--workflow-profile", "none", *TARGETS]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir)


def sacct() -> list[dict]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-1hours", "--format=JobID,State,AllocTRES"], capture_output=True, text=True, check=True)
    return [dict(zip(("id", "state", "tres"), line.split("|"))) for line in out.stdout.splitlines()]


def running_train_job(timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %k"], capture_output=True, text=True).stdout
        ids = [line.split()[0] for line in out.splitlines() if "rule_train" in line]
        if ids:
            return ids[0]
        time.sleep(1)
    raise AssertionError("no running training job in squeue")


def test_workflow_on_slurm_resumes_a_cancelled_training(tmp_path):
    model = copy.deepcopy(TINY_MODEL)
    model["training"].update(max_epochs=EPOCHS, min_epochs=EPOCHS)
    workdir = workdir_with(tmp_path / "wf", CONFIG)
    (workdir / "config/model.yaml").write_text(yaml.safe_dump(model))
    profile = ci_profile(tmp_path / "profile")
    before = {job["id"] for job in sacct()}

    # First run: cancel the training job once it has saved a checkpoint.
    run = snakemake(workdir, profile)
    job = running_train_job()
    last = workdir / MODEL / "checkpoints/last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists():
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()[-5000:] if run.poll() is not None else "no last.ckpt"
        time.sleep(0.5)
    subprocess.run(["scancel", job], check=True)
    out, _ = run.communicate(timeout=400)
    assert run.returncode not in (0, 124, 137), out[-5000:]  # failed, and did not hang
    assert "CANCELLED" in out or "failed" in out.lower(), out[-5000:]
    stopped_at = checkpoints.load(last)["epoch"]
    assert stopped_at < EPOCHS - 1
    log = (workdir / "logs/train/example/supervised__seed=0.log").read_text()
    assert "received SIGTERM: finishing this epoch" in log, log[-3000:]

    # Rerun: training continues from last.ckpt and everything finishes.
    rerun = snakemake(workdir, profile)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-5000:]
    log = (workdir / "logs/train/example/supervised__seed=0.log").read_text()
    assert f"resuming training after epoch {stopped_at} from its last checkpoint" in log, log[-3000:]
    assert checkpoints.load(last)["epoch"] == EPOCHS - 1
    for target in TARGETS:
        assert (workdir / target).stat().st_size > 0
    provenance = yaml.safe_load((workdir / MODEL / "provenance.yaml").read_text())

    # Every job went through SLURM: sacct knows them, with the GPU that the rules requested.
    jobs = [j for j in sacct() if j["id"] not in before]
    states = {j["id"]: j["state"] for j in jobs}
    assert states[job].startswith("CANCELLED"), states
    assert provenance["slurm_job_id"] in states and provenance["slurm_job_id"] != job  # the resumed job
    assert [run["slurm_job_id"] for run in provenance["runs"]] == [job, provenance["slurm_job_id"]]  # both runs
    gpu_jobs = [j for j in jobs if "gres/gpu=1" in j["tres"]]
    assert len(gpu_jobs) >= 3, jobs  # cancelled training, resumed training, prediction
    assert sum(j["state"] == "COMPLETED" for j in jobs) >= 3, jobs  # make_example, train, predict_videos
