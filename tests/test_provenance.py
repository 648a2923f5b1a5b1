"""provenance.yaml: what produced a model (issue 4: config, versions, commit, seed, data hash, SLURM job)."""

import hashlib

import yaml

from conftest import tiny_overrides
from lightning_pose_lib.config import load_config
from lightning_pose_lib.provenance import provenance, record_run


def test_provenance_names_code_data_seeds_and_the_slurm_job(example_dir, monkeypatch):
    cfg = load_config(overrides=tiny_overrides(example_dir, **{"training.rng_seed_model_pt": 7}))
    labels = example_dir / "CollectedData.csv"
    monkeypatch.setenv("SLURM_JOB_ID", "424242")  # as SLURM sets it inside a job
    record = provenance(cfg, labels)
    assert record["slurm_job_id"] == "424242"
    assert record["package_version"] and record["git_commit"]
    assert {"torch", "pytorch-lightning", "numpy"} <= set(record["libraries"])
    assert record["seeds"]["rng_seed_model_pt"] == 7
    assert record["labels_sha256"] == hashlib.sha256(labels.read_bytes()).hexdigest()

    monkeypatch.delenv("SLURM_JOB_ID")
    assert provenance(cfg, labels)["slurm_job_id"] is None


def test_every_run_of_a_resumed_training_is_recorded(example_dir, tmp_path, monkeypatch):
    cfg = load_config(overrides=tiny_overrides(example_dir))
    labels, path = example_dir / "CollectedData.csv", tmp_path / "provenance.yaml"
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    record_run(path, cfg, labels, resumed=False)
    monkeypatch.setenv("SLURM_JOB_ID", "102")  # requeued after a failure: resumes from last.ckpt
    record_run(path, cfg, labels, resumed=True)
    record = yaml.safe_load(path.read_text())
    assert record["slurm_job_id"] == "102"
    assert [(run["slurm_job_id"], run["resumed"]) for run in record["runs"]] == [("101", False), ("102", True)]
    assert all(run["started"] and run["host"] and run["git_commit"] for run in record["runs"])

    monkeypatch.setenv("SLURM_JOB_ID", "103")  # a fresh start (e.g. another config) forgets the earlier runs
    assert [run["slurm_job_id"] for run in record_run(path, cfg, labels, resumed=False)["runs"]] == ["103"]
