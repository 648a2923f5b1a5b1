"""provenance.yaml: what produced a model (issue 4: config, versions, commit, seed, data hash, SLURM job)."""

import hashlib

from conftest import tiny_overrides
from lightning_pose_lib.config import load_config
from lightning_pose_lib.provenance import provenance


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
