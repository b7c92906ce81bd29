"""Errors raised on bad corpus input, and the policy for skipping bad lines.

Every problem with user-supplied data surfaces as a :class:`CorpusError`
whose message names the file (and the line, when there is one), so that a
person can open the file and fix it.  ``CorpusError`` subclasses
``ValueError`` because it reports bad input values, not a bug.
"""

from __future__ import annotations

import logging

from fedkeys_errors import FedkeysError

__all__ = ["BadLines", "CorpusError", "location"]


class CorpusError(FedkeysError, ValueError):
    """A corpus is missing, malformed, or empty; the message says where."""


def location(path: str, line: int | None) -> str:
    """Format ``path`` and an optional 1-based line number for messages."""
    return f"{path}, line {line}" if line is not None else path


class BadLines:
    """Decides what happens to a bad input line: fail, or skip and count.

    Readers call :meth:`report` for every bad line.  In strict mode (the
    default) the first bad line raises :class:`CorpusError`; with
    ``skip=True`` lines are counted and the first few kept for a warning, so
    a large, mostly good log can still be used.
    """

    __slots__ = ("_keep", "count", "examples", "skip")

    def __init__(self, *, skip: bool = False, keep_examples: int = 5) -> None:
        self.skip = skip
        self.count = 0
        self.examples: list[str] = []
        self._keep = keep_examples

    def report(self, path: str, line: int | None, reason: str) -> None:
        """Raise for a bad line, or count it when skipping is allowed."""
        message = f"{location(path, line)}: {reason}"
        if not self.skip:
            raise CorpusError(message)
        self.count += 1
        if len(self.examples) < self._keep:
            self.examples.append(message)

    def log_summary(self, logger: logging.Logger) -> None:
        """Warn once about skipped lines, quoting the first few."""
        if self.count:
            logger.warning(
                "skipped %d bad line(s); first: %s",
                self.count,
                "; ".join(self.examples),
            )
