"""Files a user names on the command line or in an experiment: regular files only, of a bounded size.

A FIFO with no writer blocks a reader forever and `/dev/zero` never ends, so anything else than a
regular file is refused with a one-line error before it is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from planner.core.errors import InputError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def require_regular(path: str | Path, what: str) -> Path:
    """The path, if it names an existing regular file (symlinks followed); InputError otherwise."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot read {what} ({err.strerror})", file=str(path)) from None
    for test, kind in _KINDS:
        if test(mode):
            raise InputError(f"{what} is {kind}, not a regular file", file=str(path))
    return path


def read_text(path: str | Path, what: str, limit: int, *, errors: str = "strict") -> str:
    """A regular file's UTF-8 text, at most `limit` bytes; `errors="replace"` for logs, which may hold anything."""
    path = require_regular(path, what)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise InputError(f"cannot read {what} ({err.strerror})", file=str(path)) from None
    if len(data) > limit:
        raise InputError(f"{what} is larger than {limit >> 20} MiB", file=str(path))
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise InputError(f"{what} is not UTF-8 text (byte {err.start})", file=str(path)) from None
