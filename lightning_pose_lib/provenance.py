"""What produced a model: package and library versions, git commit, seeds, data hash, SLURM job,
and every run (job, host, commit) that trained it, since an interrupted training is resumed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from .config import dump
from .io import file_sha256, write_text_atomic

LIBRARIES = ("torch", "pytorch-lightning", "kornia", "numpy", "pandas", "av", "nvidia-dali-cuda120", "snakemake")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape results (those installed)."""
    return {name: v for name in LIBRARIES if (v := _version(name))}


def git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def provenance(cfg: dict, labels_csv: str | os.PathLike) -> dict:
    import torch

    return {
        "package_version": _version("lightning_pose_lib"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seeds": {
            "rng_seed_data_pt": cfg["training"]["rng_seed_data_pt"],
            "rng_seed_model_pt": cfg["training"]["rng_seed_model_pt"],
        },
        "labels_csv": str(labels_csv),
        "labels_sha256": file_sha256(labels_csv),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "host": platform.node(),
    }


def record_run(path: str | os.PathLike, cfg: dict, labels_csv: str | os.PathLike, resumed: bool) -> dict:
    """Write ``path`` (provenance.yaml) as a training run starts: this process's :func:`provenance`,
    with ``runs``, every run that trained this model, oldest first. A resumed training keeps the
    earlier runs (they may have had another SLURM job, host or commit); a fresh one starts anew."""
    record = provenance(cfg, labels_csv)
    earlier = []
    if resumed and Path(path).exists():
        earlier = (yaml.safe_load(Path(path).read_text()) or {}).get("runs", [])
    this_run = {key: record[key] for key in ("slurm_job_id", "host", "git_commit", "cuda_device")}
    record["runs"] = [*earlier, {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), **this_run, "resumed": resumed}]
    write_text_atomic(path, dump(record))
    return record
