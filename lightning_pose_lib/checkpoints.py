"""Reading and writing checkpoints and weights files: the one way, for every caller.

A checkpoint is a pickle, and unpickling can run any code the file names. Model folders are shared
between lab members on cluster file systems, so :func:`load` reads every checkpoint and weights
file with torch's restricted unpickler (``weights_only=True``), which builds tensors, containers and
plain values, plus exactly the few types this project's own checkpoints hold (:data:`SAFE_TYPES`).
A file that needs anything else is refused, naming the type, before any of it is built.

:func:`save` writes to a temporary name in the checkpoint's own folder, flushes it to the disk and
renames it onto the final name, so a job killed at any moment leaves the previous complete file or
the new one, whatever file system the folder is on. (Lightning's own writer copies from a
temporary file elsewhere onto the final name: killed during the copy, it leaves a broken file.)
Training makes Lightning read and write all its checkpoints through these two functions
(:class:`~lightning_pose_lib.train.CheckpointFiles`); this module itself imports no Lightning, so
a prediction job does not pay for it.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .io import atomic_path
from .models.network import PoseNetwork
from .models.schedules import BackboneWarmup, StepSchedule

# What a checkpoint of this project holds beyond tensors and plain values: the numpy random state
# (ResumableTraining) and the learning-rate schedule's factors (LambdaLR keeps their attributes),
# also under their former module, which older checkpoints name.
SAFE_TYPES = [
    np.ndarray, np.dtype, np.dtypes.UInt32DType, np._core.multiarray._reconstruct, BackboneWarmup, StepSchedule,
    *((kind, f"lightning_pose_lib.models.pose_model.{kind.__name__}") for kind in (BackboneWarmup, StepSchedule)),
]


def load(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, Any]:
    """The content of a checkpoint or weights file, on the CPU; :class:`InputError` naming the file
    when it is missing, unreadable, or needs anything outside :data:`SAFE_TYPES` to load."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    if path.suffix == ".safetensors":  # tensors only, by construction: nothing to allow-list
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise InputError(path, f"not a readable {what} file: {err}") from None
    try:
        with torch.serialization.safe_globals(SAFE_TYPES):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:GLOBAL|got <class) '?([\w.]+)", str(err))
        needs = f" ({found.group(1)})" if found else ""
        raise InputError(path, f"refused: it holds a type{needs} that no {what} file of this project contains, and loading it could run code") from None
    except Exception as err:  # torch's errors for a truncated or foreign file are of many types
        raise InputError(path, f"not a readable {what}: truncated or not a PyTorch file ({type(err).__name__})") from None
    if not isinstance(content, dict):
        raise InputError(path, f"not a {what}: it holds a {type(content).__name__}, not a dictionary")
    return content


def save(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path`` atomically and durably (see the module docstring)."""
    path = Path(path)
    # Serialized in memory first: torch's file writer reports a full disk as a RuntimeError
    # without the cause; a plain write raises OSError (ENOSPC), which names the problem.
    data = io.BytesIO()
    torch.save(checkpoint, data)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.getbuffer())
            f.flush()
            os.fsync(f.fileno())
    # The rename itself reaches the disk with the folder's entry.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_pose_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> PoseNetwork:
    """The network a checkpoint written by training holds, on ``device``. It is built there: the
    random initialisation that the weights then replace costs a GPU milliseconds and a CPU a third
    of a second for a ResNet-50 (on the H200 machine)."""
    checkpoint = load(path)
    if "hyper_parameters" not in checkpoint or "state_dict" not in checkpoint:
        raise InputError(path, "not a checkpoint written by this project's training (no hyper_parameters / state_dict)")
    try:
        with torch.device(device):
            model = PoseNetwork(**checkpoint["hyper_parameters"])
    except (TypeError, KeyError) as err:
        raise InputError(path, f"its model settings do not describe a model of this project ({err})") from None
    load_weights(model, path, checkpoint)
    return model


def load_weights(model: torch.nn.Module, path: str | os.PathLike, checkpoint: dict | None = None) -> None:
    """Load the weights of a checkpoint (its ``state_dict``) or of a plain weights file into
    ``model``; every parameter must be there, in its shape."""
    checkpoint = load(path) if checkpoint is None else checkpoint
    try:
        model.load_state_dict(checkpoint.get("state_dict", checkpoint))
    except RuntimeError as err:
        raise InputError(path, f"its weights do not fit this model: {str(err).splitlines()[0]} {_first_mismatch(err)}") from None


def _first_mismatch(err: RuntimeError) -> str:
    lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
    return lines[0][:200] if lines else ""
