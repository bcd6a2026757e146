"""Errors a person can act on.

`InputError` is bad input (exit code 2): its message is one line naming the file, the line and the
field at fault and what would be accepted. Anything else that escapes is a bug.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a file, a name or a value the planner cannot accept."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return f"{where}: {self.detail}" if where else self.detail


class StoreError(InputError):
    """The store cannot be read (corrupt file, unknown schema version)."""


class WorkError(Exception):
    """The work ran and failed (exit code 1): a variant that did not install, a result that could not be
    stored. One line saying what failed and what is kept."""
