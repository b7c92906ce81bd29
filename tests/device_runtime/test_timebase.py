"""device_runtime.timebase: the emulated clock, and wall durations from the coordinator in device seconds."""

from __future__ import annotations

import pytest

from device_runtime.timebase import SimClock, WallClock


class _Real:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_sim_clock_runs_speedup_times_faster() -> None:
    real = _Real()
    clock = SimClock(1000.0, 60.0, real)
    real.t += 2.0
    assert clock.now() == 1120.0
    assert clock.wall_seconds(600.0) == 10.0


def test_sim_clock_retry_window_of_30_to_60_wall_seconds_is_6_to_12_emulated_hours_at_720() -> None:
    clock = SimClock(1000.0, 720.0, _Real())
    assert (clock.device_seconds(30.0), clock.device_seconds(60.0)) == (21_600.0, 43_200.0)
    assert clock.wall_seconds(clock.device_seconds(45.0)) == 45.0


def test_sim_clock_at_speedup_one_changes_nothing() -> None:
    clock = SimClock(1000.0, 1.0, _Real())
    assert (clock.device_seconds(30.0), clock.device_seconds(60.0), clock.wall_seconds(60.0)) == (30.0, 60.0, 60.0)


def test_sim_clock_wall_now_is_the_coordinators_clock_not_the_emulated_one() -> None:
    real = _Real()
    clock = SimClock(5_000.0, 720.0, real, wall=lambda: 1_700_000_000.0)
    real.t += 10.0
    assert (clock.now(), clock.wall_now()) == (5_000.0 + 7_200.0, 1_700_000_000.0)


def test_wall_clock_of_a_real_phone_is_the_coordinators() -> None:
    clock = WallClock(lambda: 1_700_000_000.0)
    assert (clock.now(), clock.wall_now(), clock.device_seconds(30.0)) == (1_700_000_000.0, 1_700_000_000.0, 30.0)


@pytest.mark.parametrize("speedup", [0.0, -1.0, float("inf"), float("nan")])
def test_sim_clock_bad_speedup_is_named(speedup: float) -> None:
    with pytest.raises(ValueError, match="speedup"):
        SimClock(0.0, speedup)
