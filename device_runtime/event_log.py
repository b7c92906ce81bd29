"""The small on-device event log: what the device did and when.

Kept for debugging (as the federated compute client's opstats; Bonawitz et al.
2019 §3 "Analytics") and for the eligibility rule's minimum separation between
participations. Bounded: only the newest ``max_events`` are kept.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from device_runtime._sqlite import DeviceDatabase

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
    """Device ``device``'s rows of the ``events`` table of the device database."""

    _PRUNE_EVERY = 100  # records between two prunings

    def __init__(self, db: DeviceDatabase, device: int, max_events: int = 1000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be positive, got {max_events}")
        self._db = db
        self.device = int(device)
        self.max_events = max_events
        self._recorded = 0

    def record(self, time: float, kind: str, **detail: Any) -> None:
        """Append an event (and drop the oldest beyond ``max_events``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")
        self._db.execute(
            "INSERT INTO events (device, time, kind, detail) VALUES (?, ?, ?, ?)",
            (self.device, time, kind, json.dumps(detail, default=str)),
        )
        self._recorded += 1
        if self._recorded % self._PRUNE_EVERY == 0:
            self._db.execute(
                "DELETE FROM events WHERE device = ? AND id <= "
                "(SELECT id FROM events WHERE device = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.device, self.device, self.max_events),
            )

    def events(self, kind: str | None = None, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events (of ``kind`` if given), oldest first."""
        if kind is None:
            rows = self._db.query(
                "SELECT time, kind, detail FROM events WHERE device = ? ORDER BY id DESC LIMIT ?", (self.device, limit)
            )
        else:
            rows = self._db.query(
                "SELECT time, kind, detail FROM events WHERE device = ? AND kind = ? ORDER BY id DESC LIMIT ?",
                (self.device, kind, limit),
            )
        return [Event(t, k, json.loads(d)) for t, k, d in reversed(list(rows))]

    def last_time(self, kind: str) -> float | None:
        """When the newest event of ``kind`` happened, or None."""
        value = self._db.query("SELECT MAX(time) FROM events WHERE device = ? AND kind = ?", (self.device, kind))[0][0]
        return None if value is None else float(value)

    def counts(self) -> dict[str, int]:
        """Events per kind (of those kept)."""
        rows = self._db.query("SELECT kind, COUNT(*) FROM events WHERE device = ? GROUP BY kind", (self.device,))
        return {k: int(n) for k, n in rows}
