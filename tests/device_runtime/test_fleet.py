"""device_runtime.fleet: config checks, a small fleet against a fake coordinator (its clock: test_timebase)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from device_fakes import FakeCoordinator, FakeTrainer, make_device

from device_runtime.availability import Habits, next_available
from device_runtime.device import Device, DeviceConfig, StepOutcome
from device_runtime.eligibility import NOT_IDLE, TOO_SOON
from device_runtime.fleet import Fleet, FleetConfig, device_conditions, fleet_database, is_slow, wake_time
from device_runtime.timebase import SimClock


class _Real:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("field", "value"),
    [("availability", "weekly"), ("dropout", 1.5), ("slow_fraction", -0.1), ("slow_factor", 0.5), ("concurrency", 0)],
)
def test_fleet_config_bad_values_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        FleetConfig(**{field: value})  # type: ignore[arg-type]


def test_is_slow_share() -> None:
    config = FleetConfig(slow_fraction=0.25)
    share = sum(is_slow(config, d) for d in range(2000)) / 2000
    assert 0.2 < share < 0.3


def _fleet(tmp_path: Path, coordinator: FakeCoordinator, n: int, config: FleetConfig) -> Fleet:
    clock = SimClock(1_700_000_000.0, 1000.0)
    devices = [make_device(tmp_path / f"d{i}", coordinator, trainer=FakeTrainer(), clock=clock) for i in range(n)]
    return Fleet(devices, clock, config)


def _run(fleet: Fleet, until: int) -> None:
    deadline = time.monotonic() + 60
    fleet.run(lambda: fleet.stats.steps >= until or time.monotonic() > deadline, poll_seconds=0.01)


def test_fleet_steps_every_device_and_uploads(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    fleet = _fleet(tmp_path, coordinator, 4, FleetConfig(concurrency=2, slow_fraction=0.0))
    _run(fleet, 8)
    stats = fleet.stats.snapshot()
    assert stats["uploads"] >= 8 and stats["training"] == 0
    assert stats["upload_bytes"] == sum(len(b) for _, _, b in coordinator.uploads)
    # every session uploaded, except those still training when the fleet stopped: aborted as "shutdown"
    uploaded = {s for s, _, _ in coordinator.uploads}
    aborted = {s for s, _ in coordinator.aborts}
    assert uploaded | aborted == {f"s{i}" for i in range(1, coordinator.sessions + 1)}
    assert not uploaded & aborted and {r for _, r in coordinator.aborts} <= {"shutdown"}


def test_fleet_dropout_one_interrupts_every_session(tmp_path: Path) -> None:
    coordinator = FakeCoordinator()
    fleet = _fleet(tmp_path, coordinator, 3, FleetConfig(concurrency=3, dropout=1.0))
    _run(fleet, 6)
    stats = fleet.stats.snapshot()
    assert stats["interrupted"] >= 6 and stats["uploads"] == 0
    assert coordinator.uploads == [] and {r for _, r in coordinator.aborts} == {"not_idle"}


def test_device_conditions_diurnal_follow_each_devices_night() -> None:
    real = _Real()
    clock = SimClock(1_700_006_400.0, 3600.0, real)  # midnight UTC; one simulated hour per real second
    config = FleetConfig(availability="diurnal", seed=3)
    conditions = [device_conditions(config, clock, d) for d in range(200)]
    shares = []
    for _ in range(24):
        now = [c() for c in conditions]
        habits = [Habits.draw(3, d) for d in range(200)]
        assert [c.charging for c in now] == [h.in_night_window(clock.now()) for h in habits]
        shares.append(sum(c.idle and c.charging and c.unmetered for c in now) / 200)
        real.t += 1.0
    assert 0.15 < sum(shares) / 24 < 0.4  # 5-8 hour nights: about 27% of the day
    assert max(shares) - min(shares) > 0.1  # time zones are not uniform across 200 devices: the load moves


def test_wake_time_sleeps_through_the_day_not_other_reasons() -> None:
    config = FleetConfig(availability="diurnal", seed=3)
    habits = Habits.draw(3, 7)
    day = 1_700_006_400.0 + 60.0 * ((habits.night_start + habits.night_length - habits.utc_offset_minutes) % 1440)
    assert not habits.in_night_window(day + 60)
    wake = wake_time(config, 7, StepOutcome("ineligible", NOT_IDLE, day + 60))
    assert habits.in_night_window(wake) and not habits.in_night_window(wake - 60)  # the night's first minute
    assert wake_time(config, 7, StepOutcome("ineligible", TOO_SOON, day + 60)) == day + 60
    assert wake_time(config, 7, StepOutcome("rejected", "round_full", day + 60)) == day + 60
    assert wake_time(FleetConfig(), 7, StepOutcome("ineligible", NOT_IDLE, day + 60)) == day + 60


def test_fleet_phones_out_of_their_window_are_stepped_once_until_it_opens(tmp_path: Path) -> None:
    # An idle phone costs a row: a phone whose night is hours away is looked at once, not every 15 minutes.
    config = FleetConfig(availability="diurnal", seed=3, concurrency=2)
    start = 1_700_006_400.0
    far = [d for d in range(300) if next_available("diurnal", Habits.draw(3, d), start) - start > 10 * 3600][:20]
    assert len(far) == 20
    clock = SimClock(start, 2 * 3600.0)  # two simulated hours per real second: 8 polls a second without sleeping
    db = fleet_database(tmp_path)
    client = FakeCoordinator().client()
    devices = [
        Device(DeviceConfig(population="p", client=d, directory=tmp_path / f"d{d}"), client,
               conditions=device_conditions(config, clock, d), clock=clock, database=db)
        for d in far
    ]  # fmt: skip
    fleet = Fleet(devices, clock, config, ids=far)
    began = time.monotonic()
    fleet.run(lambda: time.monotonic() - began >= 1.0, poll_seconds=0.01)
    stats = fleet.stats.snapshot()
    assert (stats["steps"], stats["ineligible"], stats["checkins"]) == (20, 20, 0)
