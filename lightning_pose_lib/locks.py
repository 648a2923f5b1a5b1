"""A lock per model folder, so that two jobs never work on one model at the same time.

Training holds the folder's lock alone (exclusive); predictions share it (the workflow predicts a
model's videos in several jobs at once), so a model is never trained while it predicts, and never
trained twice at once. The lock is ``flock`` on the file ``.lock`` in the folder: the kernel
releases it when its process ends, however it ends, so a killed job never leaves the folder
locked; on NFS, Linux maps it onto the server's byte-range locks (lockd), which every node sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from .errors import InputError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def model_lock(model_dir: str | os.PathLike, shared: bool = False) -> Iterator[None]:
    """Hold ``model_dir``'s lock (``shared`` for prediction, else alone) for the block, or raise
    :class:`InputError` at once when another process holds it in a conflicting way. A model folder
    that cannot be written (a colleague's, read-only) cannot be trained in either: predicting from
    it needs no lock."""
    model_dir = Path(model_dir)
    path = model_dir / LOCK_FILE
    if not shared:
        model_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        if not shared:
            raise
        try:  # a folder this process cannot write in: lock if the lock file is there
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            fd = None
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise InputError(model_dir, f"in use by another process ({holder or 'predicting'}); wait until it ends") from None
        # Who holds it alone, for the message a second process gets; what a killed holder wrote
        # goes (a full disk, a read-only folder: no message).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            if not shared:
                os.pwrite(fd, f"training, process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            if not shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
