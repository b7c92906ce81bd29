"""The user's typed messages, kept on the phone only.

Gboard keeps training examples in an on-device cache with a retention window
(Hard et al. 2018; Bonawitz et al. 2019 §2, "example store"): text never leaves
the device, only model updates do, and old messages expire. Here each message
is its word ids (int32) with a timestamp, in rows of the device database keyed
by the device (one phone's file, or an emulated fleet's shared one). Reads
return messages in the order they were stored, so the device builds the same
rows as simulation does from the corpus.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from device_runtime._sqlite import DeviceDatabase


@dataclasses.dataclass(frozen=True)
class StoredExample:
    """One message: word ids (T,) int32 and when it was typed (seconds since the epoch)."""

    tokens: np.ndarray
    timestamp: float


class ExampleStore:
    """Device ``device``'s rows of the ``examples`` table, expiring after ``retention_seconds``."""

    def __init__(self, db: DeviceDatabase, device: int, retention_seconds: float) -> None:
        if not retention_seconds > 0:
            raise ValueError(f"retention_seconds must be positive, got {retention_seconds!r}")
        self._db = db
        self.device = int(device)
        self.retention_seconds = float(retention_seconds)

    def add(self, examples: Iterable[StoredExample]) -> int:
        """Store examples (one transaction); returns how many were added."""
        rows = []
        for example in examples:
            tokens = np.asarray(example.tokens)
            if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
                raise ValueError(f"example tokens must be a 1-D integer array, got {tokens.dtype} {tokens.shape}")
            if not math.isfinite(example.timestamp):
                raise ValueError(f"example timestamp must be finite, got {example.timestamp!r}")
            rows.append((self.device, float(example.timestamp), tokens.astype("<i4").tobytes()))
        with self._db.transaction():
            self._db.executemany("INSERT INTO examples (device, timestamp, tokens) VALUES (?, ?, ?)", rows)
        return len(rows)

    def _cutoff(self, now: float) -> float:
        return now - self.retention_seconds

    def count(self, now: float) -> int:
        """Examples still within the retention window at ``now``."""
        rows = self._db.query(
            "SELECT COUNT(*) FROM examples WHERE device = ? AND timestamp >= ?", (self.device, self._cutoff(now))
        )
        return int(rows[0][0])

    def token_count(self, now: float) -> int:
        """Word ids in the examples within the retention window (what bounds the device's FedAvg weight)."""
        rows = self._db.query(
            "SELECT COALESCE(SUM(LENGTH(tokens)), 0) FROM examples WHERE device = ? AND timestamp >= ?",
            (self.device, self._cutoff(now)),
        )
        return int(rows[0][0]) // 4  # int32 each

    def examples(self, now: float) -> list[np.ndarray]:
        """Word ids of the examples within the retention window, in storage order."""
        rows = self._db.query(
            "SELECT tokens FROM examples WHERE device = ? AND timestamp >= ? ORDER BY id",
            (self.device, self._cutoff(now)),
        )
        return [np.frombuffer(blob, dtype="<i4").astype(np.int32) for (blob,) in rows]

    def purge(self, now: float) -> int:
        """Delete examples older than the retention window; returns how many went."""
        cursor = self._db.execute(
            "DELETE FROM examples WHERE device = ? AND timestamp < ?", (self.device, self._cutoff(now))
        )
        return int(cursor.rowcount)

    def total(self) -> int:
        """Every stored example, expired or not."""
        return int(self._db.query("SELECT COUNT(*) FROM examples WHERE device = ?", (self.device,))[0][0])


def rebase_timestamps(timestamps: Sequence[float], now: float) -> list[float]:
    """Shift a user's message times so the newest is ``now`` (gaps kept; unknown (NaN) times become ``now``).

    A corpus from years ago would otherwise be expired wholesale by the
    retention window of an emulated phone living today.
    """
    known = [t for t in timestamps if math.isfinite(t)]
    newest = max(known) if known else now
    return [now - (newest - t) if math.isfinite(t) else now for t in timestamps]
