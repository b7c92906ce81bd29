"""device_runtime.example_store: storage order, retention window, purge, rebased timestamps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from device_runtime._sqlite import DeviceDatabase, DeviceDatabaseError
from device_runtime.example_store import ExampleStore, StoredExample, rebase_timestamps

DAY = 86400.0


def _store(tmp_path: Path, retention: float = 10 * DAY) -> ExampleStore:
    return ExampleStore(DeviceDatabase(tmp_path / "device.sqlite"), 0, retention)


def test_example_store_returns_examples_in_storage_order(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([StoredExample(np.array([5, 6]), 100 * DAY), StoredExample(np.array([7]), 99 * DAY)])
    got = store.examples(100 * DAY)
    assert [e.tolist() for e in got] == [[5, 6], [7]]
    assert got[0].dtype == np.int32


def test_example_store_retention_window(tmp_path: Path) -> None:
    store = _store(tmp_path, retention=10 * DAY)
    store.add([StoredExample(np.array([i]), t * DAY) for i, t in enumerate([0, 5, 10, 15])])
    now = 20 * DAY
    assert store.count(now) == 2  # days 10 and 15 are within 10 days of day 20
    assert [e.tolist() for e in store.examples(now)] == [[2], [3]]
    assert store.total() == 4
    assert store.purge(now) == 2
    assert store.total() == 2 and store.count(now) == 2


def test_example_store_token_count_within_the_window(tmp_path: Path) -> None:
    store = _store(tmp_path, retention=10 * DAY)
    assert store.token_count(20 * DAY) == 0
    store.add([StoredExample(np.array([1, 2, 3]), 5 * DAY), StoredExample(np.array([4, 5]), 15 * DAY)])
    assert store.token_count(15 * DAY) == 5
    assert store.token_count(20 * DAY) == 2  # the day-5 message expired


def test_example_store_persists(tmp_path: Path) -> None:
    _store(tmp_path).add([StoredExample(np.array([1, 2, 3]), 5.0)])
    assert [e.tolist() for e in _store(tmp_path).examples(6.0)] == [[1, 2, 3]]


@pytest.mark.parametrize(
    ("example", "match"),
    [
        (StoredExample(np.array([[1, 2]]), 1.0), "1-D integer"),
        (StoredExample(np.array([1.5]), 1.0), "1-D integer"),
        (StoredExample(np.array([1]), math.nan), "timestamp"),
    ],
)
def test_example_store_bad_example_adds_nothing(tmp_path: Path, example: StoredExample, match: str) -> None:
    store = _store(tmp_path)
    with pytest.raises(ValueError, match=match):
        store.add([StoredExample(np.array([1]), 1.0), example])
    assert store.total() == 0


def test_example_store_bad_retention(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention"):
        _store(tmp_path, retention=0.0)


def test_rebase_timestamps_keeps_gaps_newest_at_now() -> None:
    assert rebase_timestamps([10.0, math.nan, 40.0, 25.0], 1000.0) == [970.0, 1000.0, 1000.0, 985.0]
    assert rebase_timestamps([math.nan], 5.0) == [5.0]


def test_example_store_devices_sharing_a_database_see_only_their_rows(tmp_path: Path) -> None:
    db = DeviceDatabase(tmp_path / "fleet.sqlite")
    a, b = ExampleStore(db, 1, 10 * DAY), ExampleStore(db, 2, 10 * DAY)
    a.add([StoredExample(np.array([5, 6]), 100 * DAY), StoredExample(np.array([7]), 80 * DAY)])
    b.add([StoredExample(np.array([8]), 100 * DAY)])
    assert [e.tolist() for e in a.examples(100 * DAY)] == [[5, 6]]
    assert [e.tolist() for e in b.examples(100 * DAY)] == [[8]]
    assert (a.token_count(100 * DAY), b.token_count(100 * DAY)) == (2, 1)
    assert a.purge(100 * DAY) == 1 and b.total() == 1 and a.total() == 1


def test_device_database_of_an_older_version_is_named(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "device.sqlite"
    with sqlite3.connect(path) as conn:  # version 1: one device per file, no device column
        conn.execute("CREATE TABLE examples (id INTEGER PRIMARY KEY, timestamp REAL, tokens BLOB)")
    with pytest.raises(DeviceDatabaseError, match=r"device\.sqlite has schema version 0, this fedkeys needs 2"):
        DeviceDatabase(path)
