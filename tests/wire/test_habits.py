"""wire.habits: the one diurnal model, exact draws and the window rule at its edges."""

from __future__ import annotations

import numpy as np

from wire.habits import DAY_MINUTES, HABITS_SALT, draw_habits, in_night_window


def test_draw_habits_exact_and_in_range() -> None:
    habits = draw_habits(np.random.default_rng([0, HABITS_SALT, 0]), 1)
    # the first emulated phone of fleet seed 0 (device_runtime.availability.Habits.draw(0, 0))
    assert (habits.utc_offset_minutes.tolist(), habits.window_start.tolist(), habits.window_length.tolist()) == (
        [420],
        [1384],
        [445],
    )
    many = draw_habits(np.random.default_rng(1), 2000)
    assert set(np.unique(many.utc_offset_minutes // 60).tolist()) == set(range(-10, 12))
    assert many.window_length.min() >= 300 and many.window_length.max() <= 480
    starts = (many.window_start - 21 * 60) % DAY_MINUTES  # local 21:00 .. 00:59
    assert starts.min() >= 0 and starts.max() < 240


def test_in_night_window_edges() -> None:
    # UTC+1, window from local 22:00 for 6 hours: UTC 21:00 (inclusive) .. 03:00 (exclusive)
    offset, start, length = 60, 22 * 60, 6 * 60
    minutes = np.array([21 * 60 - 1, 21 * 60, 2 * 60 + 59, 3 * 60, DAY_MINUTES + 21 * 60])
    assert in_night_window(minutes, offset, start, length).tolist() == [False, True, True, False, True]
    assert bool(in_night_window(21 * 60 + 0.5, offset, start, length))
