from __future__ import annotations

import pytest

from coordinator.pace import ArrivalRate, PaceConfig, PaceInputs, retry_window, unavailable_window

CFG = PaceConfig(min_retry_seconds=5, max_retry_seconds=3600, unavailable_seconds=600)


def test_retry_window_scarce_devices_come_back_at_the_next_selection() -> None:
    # next round needs 13 devices within 60 s (0.2167/s); only 0.1/s check in -> all return inside one window
    p = PaceInputs(seconds_to_next_selection=120, next_target=13, selection_seconds=60, arrival_rate=0.1)
    assert retry_window(p, CFG) == (120, 180)


def test_retry_window_abundant_devices_are_spread_by_the_supply_demand_ratio() -> None:
    # 10 devices/s against a need of 13/65 = 0.2/s -> spread over 50 selection windows
    p = PaceInputs(seconds_to_next_selection=30, next_target=13, selection_seconds=65, arrival_rate=10.0)
    assert retry_window(p, CFG) == (30, 30 + 65 * 50)


def test_retry_window_clamped_to_config_bounds() -> None:
    soon = PaceInputs(seconds_to_next_selection=0, next_target=10, selection_seconds=60, arrival_rate=0)
    assert retry_window(soon, CFG) == (5, 65)
    far = PaceInputs(seconds_to_next_selection=10**5, next_target=10, selection_seconds=60, arrival_rate=10**4)
    assert retry_window(far, CFG) == (3600, 3600)


def test_unavailable_window_is_long() -> None:
    assert unavailable_window(CFG) == (600, 1200)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_retry_seconds": -1}, {"min_retry_seconds": 10, "max_retry_seconds": 5}, {"unavailable_seconds": 10**6}],
)
def test_pace_config_bad_values_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PaceConfig(**kwargs)


def test_arrival_rate_counts_the_window_and_scales_by_workers() -> None:
    rate = ArrivalRate(window_seconds=10, scale=2)
    for t in (0.0, 1.0, 2.0, 9.0):
        rate.observe(t)
    assert rate.rate(9.5) == pytest.approx(2 * 4 / 10)
    assert rate.rate(11.5) == pytest.approx(2 * 2 / 10)  # 0 and 1 fell out
    with pytest.raises(ValueError):
        ArrivalRate(window_seconds=0)
