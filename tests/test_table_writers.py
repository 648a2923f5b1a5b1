"""The table writer processes: they write what they are given, and die with the predicting process."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import ROOT
from lightning_pose_lib.data.labels import pose_table, read_pose_table, write_pose_tables
from lightning_pose_lib.table_writers import table_writers


def test_tables_are_written_in_a_worker_process(tmp_path):
    table = pose_table(np.arange(12.0).reshape(3, 2, 2), ["nose", "tail"], "scorer", np.full((3, 2), 0.5))
    jobs = [(table, tmp_path / "heads" / "a_static.csv", None), (table, tmp_path / "a.csv", tmp_path / "a.h5")]
    table_writers().submit(write_pose_tables, jobs).result(timeout=60)
    for path in ("heads/a_static.csv", "a.csv", "a.h5"):
        np.testing.assert_allclose(read_pose_table(tmp_path / path).to_numpy(), table.to_numpy())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_the_predicting_process_is_killed_outright():
    """SIGKILL leaves the pool no chance to stop its workers; they must not wait forever."""
    script = (
        "import os, time\n"
        "from lightning_pose_lib.table_writers import table_writers\n"
        "pool = table_writers()\n"
        "print(*sorted(pool.submit(os.getpid).result() for _ in range(4)), flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workers = [int(pid) for pid in process.stdout.readline().split()]
    assert workers and all(alive(pid) for pid in workers)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)
