"""The devices' local SQLite file: examples, event log and scheduler state, every row keyed by its device.

A real phone has a file of its own; an emulator of 10,000 phones keeps all of
them in one file behind one connection, so an idle phone costs a few rows, not
an open file, a connection and its page cache (``bench/device_fleet.py``: a
file each cost 118 KiB resident and 32 KiB of disk per idle phone, the shared
file 4 KiB and 5 KiB).
The connection is shared by the emulator's threads, so every statement runs
under one lock; a statement is microseconds, training is seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fedkeys_errors import FedkeysError

SCHEMA_VERSION = 2  # 1: one device per file, rows without a device column

_SCHEMA = """
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    tokens BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_device_timestamp ON examples (device, timestamp);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_kind_time ON events (device, kind, time);
CREATE TABLE IF NOT EXISTS state (
    device INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (device, key)
);
"""


class DeviceDatabaseError(FedkeysError, ValueError):
    """A device database this version cannot use (named by its path)."""


class DeviceDatabase:
    """One SQLite file holding the rows of one device or of a whole fleet (thread-safe; see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version not in (0, SCHEMA_VERSION) or (version == 0 and self._has_table("examples")):
            self._conn.close()
            raise DeviceDatabaseError(
                f"device database {self.path} has schema version {version}, this fedkeys needs {SCHEMA_VERSION}; "
                "remove it (or use another --state-dir) to start the devices afresh"
            )
        self._conn.execute("PRAGMA journal_mode=WAL")  # readers (the demo's report) never block the fleet
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a commit is not an fsync; a crash may lose the last ones
        self._conn.executescript(_SCHEMA)
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a SELECT."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One write (autocommitted unless inside :meth:`transaction`); the cursor's rowcount and lastrowid hold."""
        with self._lock:
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements inside commit together or not at all (other threads wait)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
