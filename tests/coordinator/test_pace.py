from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from coordinator.pace import (
    PaceConfig,
    PaceInputs,
    PopulationArrivals,
    expected_end,
    retry_window,
    unavailable_window,
)

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


class _Store:
    """An in-memory ArrivalStore shared by several "processes"; records every exchange."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int, int], int] = {}
        self.calls: list[tuple[str, dict[int, int], int]] = []
        self.down = False

    def process(self, name: str) -> Any:
        store = self

        class _View:
            def exchange(self, task_id: int, counts: Mapping[int, int], since: int) -> int | None:
                store.calls.append((name, dict(counts), since))
                if store.down:
                    return None
                for second, n in counts.items():
                    store.rows[(name, task_id, second)] = store.rows.get((name, task_id, second), 0) + n
                return sum(n for (_, t, s), n in store.rows.items() if t == task_id and s >= since)

        return _View()


def test_population_arrivals_share_at_most_once_a_second_and_sum_every_process() -> None:
    store = _Store()
    a = PopulationArrivals(store.process("a"), window_seconds=10, share_seconds=1)
    b = PopulationArrivals(store.process("b"), window_seconds=10, share_seconds=1)
    for t in (100.0, 100.2, 100.5, 100.9):
        a.observe(7, t)  # shares the first at 100.0, holds the next three
    assert store.calls == [("a", {100: 1}, 91)]
    for t in (101.0, 101.5):
        b.observe(7, t)
    # a: its shared 1 and 3 held; b: read a's shared 1 and its own 1, and holds 1
    assert a.rate(7) == pytest.approx(0.4) and b.rate(7) == pytest.approx(0.3)
    a.observe(7, 101.2)  # due again: a's held 3 + this one go out, and it reads b's
    assert store.calls[-1] == ("a", {100: 3, 101: 1}, 92)
    assert a.rate(7) == pytest.approx((4 + 1 + 1) / 10)  # a: 100 x4, 101 x1; b: 101 x1 (b's 101.5 not shared yet)
    assert b.rate(8) == 0.0


def test_population_arrivals_window_drops_old_seconds() -> None:
    store = _Store()
    a = PopulationArrivals(store.process("a"), window_seconds=10, share_seconds=1)
    a.observe(1, 100.0)
    a.observe(1, 105.0)
    a.observe(1, 111.0)  # since = 102: the check-in at 100 has left the window
    assert store.calls[-1][2] == 102 and a.rate(1) == pytest.approx(2 / 10)


def test_population_arrivals_store_down_keeps_the_counts() -> None:
    store = _Store()
    a = PopulationArrivals(store.process("a"), window_seconds=10, share_seconds=1)
    store.down = True
    a.observe(1, 100.0)
    a.observe(1, 100.5)
    store.down = False
    a.observe(1, 101.0)
    assert store.calls[-1] == ("a", {100: 2, 101: 1}, 92) and a.rate(1) == pytest.approx(0.3)


def test_population_arrivals_bad_config() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        PopulationArrivals(_Store().process("a"), window_seconds=0)


def test_expected_end_is_the_report_deadline_or_sooner_by_the_median_duration() -> None:
    assert expected_end(100.0, 700.0, []) == 700.0
    assert expected_end(100.0, 700.0, [30.0, 10.0, 50.0]) == 130.0
    assert expected_end(100.0, 700.0, [900.0, 1000.0]) == 700.0


def test_population_arrivals_count_names_one_sharer_a_period() -> None:
    """The check-in path counts on its event loop and hands the one due share to a thread."""
    store = _Store()
    a = PopulationArrivals(store.process("a"), window_seconds=10, share_seconds=1)
    assert [a.count(3, t) for t in (100.0, 100.1, 100.9, 101.0, 101.2)] == [True, False, False, True, False]
    assert store.calls == []  # counting never writes
    a.share(3, 101.0)
    assert store.calls == [("a", {100: 3, 101: 2}, 92)] and a.rate(3) == pytest.approx(0.5)
