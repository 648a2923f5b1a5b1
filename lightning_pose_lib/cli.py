"""Shared plumbing of the thin entry points in scripts/.

Each script runs standalone (argparse) or from a Snakemake ``script:`` directive (a ``snakemake``
object in its globals, output to the rule's log). Either way bad input ends the run with one line,
``error: <file>: <problem>``, and exit status 2: bad input raises :class:`InputError`; a folder the
run cannot write (read-only, full) ends as ``OSError``, reported the same way.
"""

from __future__ import annotations

import __main__
import argparse
import atexit
import contextlib
import logging
import os
import sys
from typing import Callable

from .errors import InputError


def run(cli_main: Callable[[], object], rule_main: Callable[[object], object]) -> None:
    smk = getattr(__main__, "snakemake", None)
    with _redirected(smk.log[0] if smk is not None and smk.log else None):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr, force=True)
        try:
            rule_main(smk) if smk is not None else cli_main()
        except (InputError, OSError) as err:
            fail(str(err) if isinstance(err, InputError) else _os_problem(err))


def exit_now() -> None:
    """End a run that has finished: what Python runs at exit (atexit handlers: the worker
    processes' shutdown, logging's flush), then the process ends without the interpreter's teardown
    of torch and every module, which took 1.1 s of a prediction job on the 2-core machine
    (docs/benchmarks.md). Only after the run's files are written and closed."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def fail(message: str) -> None:
    """End the run with ``error: <message>`` and status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.stderr.flush()
    sys.exit(2)


def _os_problem(err: OSError) -> str:
    """A file system refusal (read-only or full folder, permissions), as ``<file>: <problem>``."""
    return f"{err.filename}: {err.strerror}" if err.filename else str(err)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors (a missing or invalid option) end as every other bad input does:
    the usage, then one line ``error: <problem>``, status 2."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        fail(message)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


@contextlib.contextmanager
def _redirected(log_path: str | None):
    if log_path is None:
        yield
        return
    # The other ranks of a multi-device training run this script again (Lightning's ddp launcher
    # sets LOCAL_RANK for them) and write to the same log: only the first process starts the log
    # afresh, and all append, so that no process overwrites another's lines.
    if os.environ.get("LOCAL_RANK", "0") == "0":
        open(log_path, "w").close()
    with open(log_path, "a", buffering=1) as log:
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old
