"""The processes that write prediction tables, beside a predicting process.

pandas holds the interpreter lock through a whole CSV (about 30 ms per 1,000 frames and table),
which in a thread would stall the model and decoder threads of :func:`predict.predict_videos`.
So tables are written by two worker processes (:mod:`lightning_pose_lib.workers`), started once
per predicting process.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os

from .workers import context, exit_without

_POOL: concurrent.futures.ProcessPoolExecutor | None = None


def table_writers() -> concurrent.futures.ProcessPoolExecutor:
    """The pool, started on first use; submit ``write_pose_tables`` calls to it."""
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context(), initializer=_start_writer, initargs=(os.getpid(),))
        atexit.register(_POOL.shutdown)  # also when the process ends without stopping its threads first (cli.exit_now)
    return _POOL


def _start_writer(parent: int) -> None:
    """In each writer, as it starts (long before a video is done): pandas and the table code."""
    exit_without(parent)
    import lightning_pose_lib.data.labels  # noqa: F401
