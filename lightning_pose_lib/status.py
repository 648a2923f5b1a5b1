"""A model folder's ``train_status.json``: written by training ("TRAINING" when it starts,
"COMPLETED" with the metrics as its very last step), read before a model is used."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .io import write_text_atomic

STATUS_FILE = "train_status.json"


def write_status(model_dir: str | os.PathLike, status: str, **extra: Any) -> None:
    record = {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    write_text_atomic(Path(model_dir) / STATUS_FILE, json.dumps(record, indent=2) + "\n")


def read_status(model_dir: str | os.PathLike) -> str:
    """The recorded status, or what is wrong with the file ("unknown: the file is missing", ...)."""
    try:
        return str(json.loads((Path(model_dir) / STATUS_FILE).read_text()).get("status"))
    except FileNotFoundError:
        return "unknown: the file is missing"
    except (ValueError, AttributeError, OSError) as err:
        return f"unreadable: {type(err).__name__}"


def is_complete(model_dir: str | os.PathLike) -> bool:
    return read_status(model_dir) == "COMPLETED"
