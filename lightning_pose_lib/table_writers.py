"""The processes that write prediction tables, beside a predicting process.

pandas holds the interpreter lock through a whole CSV (about 30 ms per 1,000 frames and table),
which in a thread would stall the model and decoder threads of :func:`predict.predict_videos`.
So tables are written by two worker processes, started once per predicting process from a fork
server that preloads only the table writer (not the main script, nor torch): the workers are clean
of the predicting process's threads and CUDA state. A predicting process killed outright cannot
stop them, so each worker exits by itself once that process is gone.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time

_POOL: concurrent.futures.ProcessPoolExecutor | None = None


def table_writers() -> concurrent.futures.ProcessPoolExecutor:
    """The pool, started on first use; submit ``write_pose_tables`` calls to it."""
    global _POOL
    if _POOL is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["lightning_pose_lib.data.labels"])
        _POOL = concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=_exit_without, initargs=(os.getpid(),))
    return _POOL


def _exit_without(pid: int) -> None:
    """Worker start-up: exit once process ``pid`` is gone (its workers would wait for work forever)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, or its number taken by another user's process
                pass

    threading.Thread(target=watch, daemon=True).start()
