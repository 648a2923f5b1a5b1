"""The one exception type for bad user input.

Every problem a user can fix (a malformed CSV, a missing image, an unreadable video, an unknown
config key) is raised as :class:`InputError`, whose message names the file and the problem. Entry
points print that message alone, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import os


class InputError(Exception):
    """Bad input: ``<path>: <problem>``."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")

    def __reduce__(self):  # raised in worker processes (the table writers) and sent back
        return type(self), (self.path, self.problem)
