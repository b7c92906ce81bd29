"""Which simulated phones may train in a round.

Real federated training only reaches phones that are idle, charging and on an
unmetered network, which in practice means at night in each phone's own time
zone (Hard et al. 2018; Bonawitz et al. 2019). That biases who trains when:
the clients of one round come from a band of time zones, not from everywhere.
``always`` ignores this; ``diurnal`` models it:

- every client has a UTC offset (whole hours, -10..+11) and a nightly window
  start (local 21:00..00:59) and length (5..8 hours), drawn once from
  (seed, client index);
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

AvailabilityMode = Literal["always", "diurnal"]

_MIN_OFFSET, _MAX_OFFSET = -10, 11  # hours
_WINDOW_START_MIN, _WINDOW_START_SPAN = 21 * 60, 4 * 60  # local minutes after midnight
_WINDOW_LENGTH_MIN, _WINDOW_LENGTH_SPAN = 5 * 60, 3 * 60
_DAY = 24 * 60


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
        rng = np.random.default_rng([seed, 0x5C4ED])
        offsets = rng.integers(_MIN_OFFSET, _MAX_OFFSET + 1, size=num_clients) * 60
        starts = _WINDOW_START_MIN + rng.integers(0, _WINDOW_START_SPAN, size=num_clients)
        lengths = _WINDOW_LENGTH_MIN + rng.integers(0, _WINDOW_LENGTH_SPAN + 1, size=num_clients)
        return cls(offsets.astype(np.int64), (starts % _DAY).astype(np.int64), lengths.astype(np.int64))


def eligible_clients(num_clients: int, round_num: int, config: AvailabilityConfig) -> np.ndarray:
    """Indices (ascending) of the clients that may train in ``round_num``."""
    if num_clients < 0 or round_num < 0:
        raise ValueError(f"num_clients and round_num must be >= 0, got {num_clients}, {round_num}")
    if config.mode == "always":
        return np.arange(num_clients)
    schedules = ClientSchedules.draw(num_clients, config.seed)
    local = round_num * config.round_minutes + schedules.utc_offset_minutes  # (N,) minutes since local day 0
    since_start = (local - schedules.window_start) % _DAY  # (N,)
    in_window = since_start < schedules.window_length
    night = (local - schedules.window_start) // _DAY  # which local night the window belongs to
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
