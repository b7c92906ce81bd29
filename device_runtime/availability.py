"""Simulated phone conditions over a day: who is idle, charging and on Wi-Fi when.

Real phones meet the training conditions mostly at night, plugged in at home,
in their own time zone (Hard et al. 2018; Bonawitz et al. 2019 §2 and Fig. 7:
participation follows a daily cycle). ``always`` makes every phone eligible
all the time; ``diurnal`` gives each phone habits drawn once from (seed,
device) from simulation's diurnal model (``wire.habits``, also
``tff_sim.availability``'s): a UTC offset of -10..+11 hours and a nightly window
starting at local 21:00..00:59 and lasting 5..8 hours. Inside the window the
phone is idle, charging on Wi-Fi with a full battery; outside it is in use,
on battery and on mobile data.

Pure functions of (habits, time): a restarted emulator sees the same phones.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from device_runtime.eligibility import DeviceConditions
from wire.habits import DAY_MINUTES, HABITS_SALT, draw_habits, in_night_window

Availability = Literal["always", "diurnal"]
AVAILABILITIES: tuple[str, ...] = ("always", "diurnal")
ALWAYS = DeviceConditions(idle=True, charging=True, unmetered=True, battery=1.0)
NIGHT = DeviceConditions(idle=True, charging=True, unmetered=True, battery=0.95)
DAY = DeviceConditions(idle=False, charging=False, unmetered=False, battery=0.6)


@dataclasses.dataclass(frozen=True)
class Habits:
    """One phone's daily rhythm: minutes of UTC offset, and its nightly charging window (local minutes)."""

    utc_offset_minutes: int
    night_start: int  # local minutes after midnight
    night_length: int  # minutes

    @classmethod
    def draw(cls, seed: int, device: int) -> Habits:
        habits = draw_habits(np.random.default_rng([seed, HABITS_SALT, device]), 1)
        return cls(int(habits.utc_offset_minutes[0]), int(habits.window_start[0]), int(habits.window_length[0]))

    def in_night_window(self, unix_time: float) -> bool:
        return bool(in_night_window(unix_time / 60.0, self.utc_offset_minutes, self.night_start, self.night_length))


def next_available(availability: str, habits: Habits, unix_time: float) -> float:
    """The first time at or after ``unix_time`` when the phone's conditions may allow training.

    What the phone's OS job scheduler does with a job constrained to idle,
    charging and unmetered: it wakes the app when they hold instead of the app
    polling all day, so an emulated phone out of its window costs nothing.
    """
    if availability == "always" or (availability == "diurnal" and habits.in_night_window(unix_time)):
        return unix_time
    if availability == "diurnal":
        local_minute = (unix_time / 60.0 + habits.utc_offset_minutes) % DAY_MINUTES
        return unix_time + 60.0 * ((habits.night_start - local_minute) % DAY_MINUTES)
    raise ValueError(f"unknown availability {availability!r}; expected one of {', '.join(AVAILABILITIES)}")


def conditions_at(availability: str, habits: Habits, unix_time: float) -> DeviceConditions:
    """The phone's conditions at ``unix_time`` under the availability pattern."""
    if availability == "always":
        return ALWAYS
    if availability == "diurnal":
        return NIGHT if habits.in_night_window(unix_time) else DAY
    raise ValueError(f"unknown availability {availability!r}; expected one of {', '.join(AVAILABILITIES)}")
