"""device_runtime.event_log: record, query, bounded size."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_runtime import event_log as ev
from device_runtime._sqlite import DeviceDatabase


def test_event_log_records_and_queries(tmp_path: Path) -> None:
    log = ev.EventLog(DeviceDatabase(tmp_path / "d.sqlite"), 0)
    log.record(1.0, ev.CHECKIN, examples=3)
    log.record(2.0, ev.UPLOADED, session="s1", bytes=10)
    log.record(3.0, ev.CHECKIN, examples=3)
    assert [e.kind for e in log.events()] == [ev.CHECKIN, ev.UPLOADED, ev.CHECKIN]
    assert log.events(ev.UPLOADED) == [ev.Event(2.0, ev.UPLOADED, {"session": "s1", "bytes": 10})]
    assert log.last_time(ev.CHECKIN) == 3.0 and log.last_time(ev.INTERRUPTED) is None
    assert log.counts() == {ev.CHECKIN: 2, ev.UPLOADED: 1}


def test_event_log_keeps_only_the_newest(tmp_path: Path) -> None:
    log = ev.EventLog(DeviceDatabase(tmp_path / "d.sqlite"), 0, max_events=10)
    for i in range(250):
        log.record(float(i), ev.CHECKIN)
    kept = log.events(limit=1000)
    assert 10 <= len(kept) < 110
    assert kept[-1].time == 249.0


def test_event_log_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'exploded'"):
        ev.EventLog(DeviceDatabase(tmp_path / "d.sqlite"), 0).record(1.0, "exploded")


def test_event_log_shared_database_keeps_each_devices_newest(tmp_path: Path) -> None:
    db = DeviceDatabase(tmp_path / "fleet.sqlite")
    busy, quiet = ev.EventLog(db, 1, max_events=10), ev.EventLog(db, 2, max_events=10)
    quiet.record(0.5, ev.UPLOADED)
    for i in range(100):  # the 100th record prunes the busy device to its newest 10
        busy.record(float(i), ev.CHECKIN)
    assert [e.time for e in busy.events(limit=1000)] == [float(i) for i in range(90, 100)]
    assert quiet.events() == [ev.Event(0.5, ev.UPLOADED, {})] and quiet.last_time(ev.CHECKIN) is None
