"""The small on-device event log: what the device did and when.

Kept for debugging (as the federated compute client's opstats; Bonawitz et al.
2019 §3 "Analytics") and for the eligibility rule's minimum separation between
participations. Bounded: only the newest ``max_events`` are kept.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

CHECKIN = "checkin"
ACCEPTED = "accepted"
REJECTED = "rejected"
TRAINED = "trained"
UPLOADED = "uploaded"
INTERRUPTED = "interrupted"
REFUSED = "refused"  # a plan or checkpoint the device would not run (hash mismatch, unknown format)
ERROR = "error"  # a transient or permanent error talking to the coordinator
KINDS: tuple[str, ...] = (CHECKIN, ACCEPTED, REJECTED, TRAINED, UPLOADED, INTERRUPTED, REFUSED, ERROR)


class Event(NamedTuple):
    time: float
    kind: str
    detail: dict[str, Any]


class EventLog:
    """Events in the ``events`` table of the device database."""

    def __init__(self, conn: sqlite3.Connection, max_events: int = 1000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be positive, got {max_events}")
        self._conn = conn
        self.max_events = max_events

    def record(self, time: float, kind: str, **detail: Any) -> None:
        """Append an event (and drop the oldest beyond ``max_events``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")
        cursor = self._conn.execute(
            "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", (time, kind, json.dumps(detail, default=str))
        )
        if cursor.lastrowid is not None and cursor.lastrowid % 100 == 0:
            self._conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (self.max_events,))

    def events(self, kind: str | None = None, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events (of ``kind`` if given), oldest first."""
        if kind is None:
            rows = self._conn.execute("SELECT time, kind, detail FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._conn.execute(
                "SELECT time, kind, detail FROM events WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [Event(t, k, json.loads(d)) for t, k, d in reversed(list(rows))]

    def last_time(self, kind: str) -> float | None:
        """When the newest event of ``kind`` happened, or None."""
        row = self._conn.execute("SELECT MAX(time) FROM events WHERE kind = ?", (kind,)).fetchone()
        return None if row[0] is None else float(row[0])

    def counts(self) -> dict[str, int]:
        """Events per kind (of those kept)."""
        return {k: int(n) for k, n in self._conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind")}
