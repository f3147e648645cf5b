"""Exceptions that name the file and the problem, so a pipeline log says what went wrong where."""

from __future__ import annotations

import errno
import os


class FarsideError(Exception):
    """Base class of every error farside-gan raises on purpose."""


class InputDataError(FarsideError):
    """A file that cannot be used: corrupt, truncated, missing keywords, NaN-filled, wrong channel...

    ``reason`` is a short machine-readable code (recorded in the dataset manifest),
    ``problem`` the human sentence.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str, reason: str = "bad_input"):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}")


class NoDataError(FarsideError):
    """No observation exists within the tolerance of the requested time."""

    def __init__(self, what: str, problem: str):
        self.what = what
        self.problem = problem
        self.reason = "no_data"
        super().__init__(f"{what}: {problem}")


#: errno values of a write that ran out of room: disk full, quota exceeded, file size limit.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class OutputError(FarsideError):
    """An output that could not be written (no space, no permission); nothing partial is left."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
