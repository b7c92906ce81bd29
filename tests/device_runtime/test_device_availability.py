"""device_runtime.availability: habits in range, the night window in local time."""

from __future__ import annotations

import pytest

from device_runtime.availability import ALWAYS, DAY, NIGHT, Habits, conditions_at, next_available


def test_habits_draw_in_range_and_deterministic() -> None:
    habits = [Habits.draw(0, d) for d in range(300)]
    assert {h.utc_offset_minutes // 60 for h in habits} == set(range(-10, 12))
    assert all(h.night_start >= 21 * 60 or h.night_start < 60 for h in habits)
    assert {h.night_length for h in habits} <= set(range(300, 481))
    assert Habits.draw(0, 5) == habits[5] and Habits.draw(1, 5) != habits[5]


def test_in_night_window_local_time() -> None:
    habits = Habits(utc_offset_minutes=120, night_start=23 * 60, night_length=6 * 60)  # UTC+2, 23:00-05:00
    day0 = 1_700_006_400  # a midnight UTC
    assert day0 % 86400 == 0
    assert habits.in_night_window(day0 + 21 * 3600)  # 23:00 local
    assert habits.in_night_window(day0 + 2 * 3600)  # 04:00 local
    assert not habits.in_night_window(day0 + 3 * 3600)  # 05:00 local
    assert not habits.in_night_window(day0 + 12 * 3600)


def test_conditions_at_each_mode() -> None:
    habits = Habits(0, 0, 60)
    assert conditions_at("always", habits, 12 * 3600) == ALWAYS
    assert conditions_at("diurnal", habits, 86400 * 5 + 30 * 60) == NIGHT
    assert conditions_at("diurnal", habits, 86400 * 5 + 120 * 60) == DAY
    with pytest.raises(ValueError, match="'weekly'"):
        conditions_at("weekly", habits, 0)


def test_next_available_is_the_next_night_start() -> None:
    habits = Habits(utc_offset_minutes=120, night_start=23 * 60, night_length=6 * 60)  # UTC+2, 23:00-05:00
    day0 = 1_700_006_400
    assert next_available("diurnal", habits, day0 + 12 * 3600) == day0 + 21 * 3600  # 14:00 local -> 23:00
    assert next_available("diurnal", habits, day0 + 22 * 3600) == day0 + 22 * 3600  # inside: now
    assert next_available("diurnal", habits, day0 + 3 * 3600) == day0 + 21 * 3600  # 05:00 local, just closed
    assert next_available("always", habits, 5.0) == 5.0
    with pytest.raises(ValueError, match="'weekly'"):
        next_available("weekly", habits, 0)
