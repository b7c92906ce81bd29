"""Phones' daily habits: when a phone is idle, charging and on Wi-Fi — one model for simulation and the fleet.

Real federated training reaches phones that are idle, charging and on an
unmetered network, in practice at night in each phone's own time zone (Hard et
al. 2018; Bonawitz et al. 2019 §2 and Fig. 7: participation follows a daily
cycle). Each client has a UTC offset of -10..+11 whole hours and a nightly
window starting at local 21:00..00:59 and lasting 5..8 hours.

``draw_habits`` draws them from a generator, ``in_night_window`` says whether a
UTC minute falls inside a window. Simulation (``tff_sim.availability``, one
generator for all clients) and the emulated fleet
(``device_runtime.availability``, one generator per device) both use these, so
the two sides share one distribution and one rule.
"""

from __future__ import annotations

import dataclasses

import numpy as np

HABITS_SALT = 0x5C4ED
DAY_MINUTES = 24 * 60
_MIN_OFFSET_H, _MAX_OFFSET_H = -10, 11
_WINDOW_START_MIN, _WINDOW_START_SPAN = 21 * 60, 4 * 60  # local minutes after midnight
_WINDOW_LENGTH_MIN, _WINDOW_LENGTH_SPAN = 5 * 60, 3 * 60


@dataclasses.dataclass(frozen=True)
class HabitArrays:
    """Habits of ``n`` clients, int64 arrays of shape (n,)."""

    utc_offset_minutes: np.ndarray
    window_start: np.ndarray  # local minutes after midnight
    window_length: np.ndarray  # minutes


def draw_habits(rng: np.random.Generator, n: int) -> HabitArrays:
    """n clients' habits: all offsets, then all window starts, then all lengths from ``rng``."""
    offsets = rng.integers(_MIN_OFFSET_H, _MAX_OFFSET_H + 1, size=n) * 60
    starts = _WINDOW_START_MIN + rng.integers(0, _WINDOW_START_SPAN, size=n)
    lengths = _WINDOW_LENGTH_MIN + rng.integers(0, _WINDOW_LENGTH_SPAN + 1, size=n)
    return HabitArrays(offsets.astype(np.int64), (starts % DAY_MINUTES).astype(np.int64), lengths.astype(np.int64))


def minutes_into_window(
    utc_minute: np.ndarray | float, offset: np.ndarray | int, start: np.ndarray | int
) -> np.ndarray:
    """Minutes since the latest local window start (in [0, a day)), elementwise."""
    return np.asarray((utc_minute + offset - start) % DAY_MINUTES)


def in_night_window(
    utc_minute: np.ndarray | float, offset: np.ndarray | int, start: np.ndarray | int, length: np.ndarray | int
) -> np.ndarray:
    """Whether UTC minute ``utc_minute`` (minutes since the epoch, or since a simulated day 0) is inside the window."""
    return np.asarray(minutes_into_window(utc_minute, offset, start) < length)
