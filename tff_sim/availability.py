"""Which simulated phones may train in a round.

Real federated training only reaches phones that are idle, charging and on an
unmetered network, which in practice means at night in each phone's own time
zone (Hard et al. 2018; Bonawitz et al. 2019). That biases who trains when:
the clients of one round come from a band of time zones, not from everywhere.
``always`` ignores this; ``diurnal`` models it:

- every client has a UTC offset (whole hours, -10..+11) and a nightly window
  start (local 21:00..00:59) and length (5..8 hours), drawn once from
  (seed, client index) (``wire.habits``, the emulated fleet's model too);
- round ``r`` happens at simulated time ``r * round_minutes`` after midnight
  UTC of day 0;
- a client is eligible when that time falls inside its local window, unless
  it sits the night out (probability ``skip_probability``, drawn per
  (seed, client, local night)).

Everything is a pure function of (seed, round): a resumed run sees the same
eligible clients.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from wire.habits import DAY_MINUTES, HABITS_SALT, draw_habits, in_night_window

AvailabilityMode = Literal["always", "diurnal"]


@dataclasses.dataclass(frozen=True)
class AvailabilityConfig:
    mode: AvailabilityMode = "always"
    round_minutes: int = 10
    skip_probability: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("always", "diurnal"):
            raise ValueError(f"availability mode must be 'always' or 'diurnal', got {self.mode!r}")
        if self.round_minutes < 1:
            raise ValueError(f"round_minutes must be positive, got {self.round_minutes}")
        if not 0.0 <= self.skip_probability < 1.0:
            raise ValueError(f"skip_probability must be in [0, 1), got {self.skip_probability}")


@dataclasses.dataclass(frozen=True)
class ClientSchedules:
    """Per-client habits, each an array of shape (num_clients,)."""

    utc_offset_minutes: np.ndarray
    window_start: np.ndarray  # local minutes after midnight
    window_length: np.ndarray  # minutes

    @classmethod
    def draw(cls, num_clients: int, seed: int) -> ClientSchedules:
        habits = draw_habits(np.random.default_rng([seed, HABITS_SALT]), num_clients)
        return cls(habits.utc_offset_minutes, habits.window_start, habits.window_length)


def eligible_clients(num_clients: int, round_num: int, config: AvailabilityConfig) -> np.ndarray:
    """Indices (ascending) of the clients that may train in ``round_num``."""
    if num_clients < 0 or round_num < 0:
        raise ValueError(f"num_clients and round_num must be >= 0, got {num_clients}, {round_num}")
    if config.mode == "always":
        return np.arange(num_clients)
    schedules = ClientSchedules.draw(num_clients, config.seed)
    utc_minute = round_num * config.round_minutes
    in_window = in_night_window(
        utc_minute, schedules.utc_offset_minutes, schedules.window_start, schedules.window_length
    )  # (N,)
    local = utc_minute + schedules.utc_offset_minutes  # (N,) minutes since local day 0
    night = (local - schedules.window_start) // DAY_MINUTES  # which local night the window belongs to
    skip = _night_coins(num_clients, night, config.seed) < config.skip_probability
    return np.flatnonzero(in_window & ~skip)


def _night_coins(num_clients: int, night: np.ndarray, seed: int) -> np.ndarray:
    """A uniform draw per (client, night), stable however many rounds are asked."""
    coins = np.empty(num_clients)
    for value in np.unique(night):
        members = np.flatnonzero(night == value)
        rng = np.random.default_rng([seed, 0xD1CE, int(value) % (1 << 32)])
        coins[members] = rng.random(num_clients)[members]
    return coins
