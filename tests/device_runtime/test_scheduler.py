"""device_runtime.scheduler: backoff, retry windows, error classes and persisted state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device_runtime._sqlite import DeviceDatabase
from device_runtime.scheduler import (
    RetryPolicy,
    SchedulerState,
    StateStore,
    is_transient_status,
    jittered,
    permanent_delay,
    retry_window_delay,
    transient_delay,
)


class _Edge:
    """A generator stand-in returning the low or the high end of every uniform draw."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def uniform(self, low: float, high: float) -> float:
        return high if self.high else low


POLICY = RetryPolicy(transient_initial_seconds=10.0, transient_max_seconds=70.0, transient_multiplier=2.0)


def test_transient_delay_doubles_up_to_the_cap_with_equal_jitter() -> None:
    low = [transient_delay(n, POLICY, _Edge(False)) for n in range(1, 7)]  # type: ignore[arg-type]
    high = [transient_delay(n, POLICY, _Edge(True)) for n in range(1, 7)]  # type: ignore[arg-type]
    assert high == [10.0, 20.0, 40.0, 70.0, 70.0, 70.0]
    assert low == [5.0, 10.0, 20.0, 35.0, 35.0, 35.0]


def test_transient_delay_huge_streak_does_not_overflow() -> None:
    assert transient_delay(10_000, POLICY, _Edge(True)) == 70.0  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failures"):
        transient_delay(0, POLICY, np.random.default_rng(0))


def test_retry_window_delay_within_window_and_deterministic_per_seed() -> None:
    draws = [retry_window_delay(5.0, 9.0, np.random.default_rng(s)) for s in range(100)]
    assert all(5.0 <= d <= 9.0 for d in draws) and max(draws) - min(draws) > 3.0
    assert retry_window_delay(5.0, 9.0, np.random.default_rng(1)) == draws[1]
    assert retry_window_delay(4.0, 4.0, np.random.default_rng(0)) == 4.0
    with pytest.raises(ValueError, match="retry window"):
        retry_window_delay(9.0, 5.0, np.random.default_rng(0))


def test_jittered_and_permanent_delay_bounds() -> None:
    assert jittered(100.0, 0.2, _Edge(True)) == pytest.approx(120.0)  # type: ignore[arg-type]
    assert jittered(100.0, 0.2, _Edge(False)) == pytest.approx(80.0)  # type: ignore[arg-type]
    assert permanent_delay(RetryPolicy(permanent_seconds=50.0, jitter=0.1), _Edge(True)) == pytest.approx(55.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
    ],
)
def test_is_transient_status(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transient_initial_seconds": 0.0},
        {"transient_max_seconds": 1.0},
        {"transient_multiplier": 0.5},
        {"jitter": 1.0},
        {"permanent_seconds": float("inf")},
    ],
)
def test_retry_policy_bad_values_are_named(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_seconds")[0]):
        RetryPolicy(**kwargs)


def test_state_store_round_trip(tmp_path: Path) -> None:
    store = StateStore(DeviceDatabase(tmp_path / "d.sqlite"), 0)
    assert store.load() == SchedulerState()
    store.save(SchedulerState(123.5, 3, "s9"))
    store.save(SchedulerState(124.5, 4, None))
    assert StateStore(DeviceDatabase(tmp_path / "d.sqlite"), 0).load() == SchedulerState(124.5, 4, None)
    store.save(SchedulerState(125.5, 0, "s10", "tok10"))  # the open session's token, to abort it after a restart
    assert StateStore(DeviceDatabase(tmp_path / "d.sqlite"), 0).load() == SchedulerState(125.5, 0, "s10", "tok10")
