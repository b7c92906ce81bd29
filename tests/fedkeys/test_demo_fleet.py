"""fedkeys.demo_fleet: the fleet's activity read back from the phones' event logs (exact counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device_runtime import ExampleStore, Habits, StoredExample, conditions_at, fleet_database
from device_runtime import event_log as ev
from fedkeys.demo_fleet import device_users, eligible_fraction, fleet_activity

START = 1_767_571_200.0  # midnight UTC


def _phone(state_dir: Path, user: int, events: list[tuple[float, str, dict[str, object]]]) -> None:
    db = fleet_database(state_dir)
    ExampleStore(db, user, 86400.0).add([StoredExample(np.array([4, 5], np.int32), START)])
    log = ev.EventLog(db, user)
    for time, kind, detail in events:
        log.record(time, kind, **detail)
    db.close()


def test_fleet_activity_counts_uploads_by_round_and_hour(tmp_path: Path) -> None:
    first: list[tuple[float, str, dict[str, object]]] = [
        (START + 60, ev.ACCEPTED, {"round": 0}),
        (START + 100, ev.UPLOADED, {"round": 0, "bytes": 1000}),
        (START + 3700, ev.UPLOADED, {"round": 1, "bytes": 900}),
    ]
    _phone(tmp_path, 3, first)
    _phone(tmp_path, 12, [(START + 200, ev.UPLOADED, {"round": 0, "bytes": 500}), (START + 7300, ev.INTERRUPTED, {})])
    (tmp_path / "cache").mkdir()
    activity = fleet_activity(tmp_path, start=START, end=START + 2.5 * 3600, availability="always", seed=0)
    assert device_users(tmp_path) == [3, 12]
    assert activity.devices == 2
    assert activity.upload_bytes_by_round == {0: 1500, 1: 900}
    assert activity.uploads_by_round == {0: 2, 1: 1}
    assert activity.hours == (0, 1, 2)
    assert activity.uploads_by_hour == (2, 1, 0)
    assert activity.interrupted_by_hour == (0, 0, 1)
    assert activity.eligible_fraction_by_hour == (1.0, 1.0, 1.0)
    assert activity.emulated_hours == 2.5


def test_fleet_activity_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    activity = fleet_activity(tmp_path, start=START, end=START, availability="always", seed=0)
    assert (activity.devices, activity.upload_bytes_by_round, activity.hours) == (0, {}, (0,))
    assert activity.eligible_fraction_by_hour == (0.0,)


def test_eligible_fraction_follows_each_phones_night(tmp_path: Path) -> None:
    users = [0, 1, 2, 3]
    fractions = eligible_fraction("diurnal", 5, users, START, 24, samples_per_hour=1)
    expected = [
        sum(conditions_at("diurnal", Habits.draw(5, u), START + h * 3600).idle for u in users) / len(users)
        for h in range(24)
    ]
    assert fractions == expected
    assert 0.0 < sum(fractions) / 24 < 1.0  # some phones at night, never all day


def test_eligible_fraction_unknown_availability_named() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        eligible_fraction("sometimes", 0, [1], START, 1)
