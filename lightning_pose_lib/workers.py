"""Worker processes beside a predicting process: table writers and CPU video decoders.

They are forked from one fork server that preloads only the modules the decoders run (not the main
script; the table writers import theirs as they start): the workers start in milliseconds and are
clean of the predicting process's threads and CUDA state. A predicting process killed outright
cannot stop them, so each worker exits by itself once that process is gone; one that ends normally
stops the server at its exit.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import time

# What the decoders run, imported once in the fork server rather than in each decoder. torch only
# for its shared-memory tensors, in which decoders hand frames over (torch.multiprocessing). Not
# pandas, which only the two table writers use: the server forks no worker before its imports are
# done, and with pandas among them a job's first workers waited for it (table_writers imports it
# in each writer).
PRELOAD = ["lightning_pose_lib.video.pyav_backend", "torch.multiprocessing"]


def context() -> multiprocessing.context.BaseContext:
    """The fork-server context every worker is started from."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    return forkserver


def start_server() -> None:
    """Start the fork server now, without waiting for it: its imports (torch among them) then run
    beside this process's own imports and model load, not after them when the first worker is asked for."""
    context()
    multiprocessing.forkserver.ensure_running()


@atexit.register  # after the table writers' shutdown, which registers later (atexit runs last in, first out)
def _stop_server() -> None:
    """At exit, end the fork server this process started. Left alone, it ends once this process is
    gone, but only after its interpreter's teardown of torch (0.5 s on the 2-core machine), all the
    while holding this process's stdout and stderr open: whatever reads them through a pipe (a
    shell pipeline, ``subprocess.run`` capturing them) waits for it. SIGTERM ends it without that
    teardown."""
    pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)  # set only where this process started it
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def exit_without(pid: int) -> None:
    """In a worker: exit once process ``pid`` is gone (the worker would wait for work forever)."""

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
