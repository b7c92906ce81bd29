"""The record every corpus source yields: one example typed by one user."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RawExample"]


@dataclass(frozen=True, slots=True)
class RawExample:
    """One message (IRC line, log entry, speech) before normalization.

    ``user_id`` is the federated client it belongs to (one user = one phone).
    ``timestamp`` is UTC epoch seconds, or ``None`` when the source has no
    time.  ``source`` and ``line`` point back at the input for diagnostics.
    """

    user_id: str
    text: str
    timestamp: float | None
    source: str
    line: int
