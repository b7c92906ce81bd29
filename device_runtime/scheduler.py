"""When the device next checks in: retry windows, backoff on errors, persisted across restarts.

Modelled on Google's federated compute client (Bonawitz et al. 2019 §2-3;
``fcp/client``): the coordinator steers the population's pace by telling each
device when to come back (a retry window, from which the device picks a
uniformly random time, so check-ins spread out). When talking to the
coordinator fails, the client distinguishes

- transient errors (connection refused or reset, timeouts, HTTP 5xx, 429 and
  408): the coordinator is unreachable or overloaded; retry with exponential
  backoff and jitter, so a fleet that lost its server does not return in a
  thundering herd;
- permanent errors (other 4xx: 400, 401, 403, 404, 409, 413, 422): retrying
  the same request cannot help; drop the session's work and wait the long
  permanent-error delay before checking in again.

Everything here is pure given a ``numpy`` generator; the next check-in time is
kept in the device database so an emulator restart carries on where it was.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from device_runtime._sqlite import DeviceDatabase

TRANSIENT_STATUS: frozenset[int] = frozenset({408, 429})


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status means "try again later" (5xx, 408, 429) rather than "this will never work"."""
    return status >= 500 or status in TRANSIENT_STATUS


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Delays in (device clock) seconds; defaults here, nowhere else."""

    transient_initial_seconds: float = 30.0
    transient_max_seconds: float = 3600.0
    transient_multiplier: float = 2.0
    permanent_seconds: float = 4 * 3600.0
    ineligible_seconds: float = 900.0  # how often an ineligible device looks at its conditions again
    jitter: float = 0.2  # +-20% around a fixed delay

    def __post_init__(self) -> None:
        for name in ("transient_initial_seconds", "transient_max_seconds", "permanent_seconds", "ineligible_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.transient_max_seconds < self.transient_initial_seconds:
            raise ValueError(
                f"transient_max_seconds {self.transient_max_seconds} < initial {self.transient_initial_seconds}"
            )
        if not self.transient_multiplier >= 1:
            raise ValueError(f"transient_multiplier must be >= 1, got {self.transient_multiplier!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")


def jittered(seconds: float, jitter: float, rng: np.random.Generator) -> float:
    """``seconds`` scaled by a uniform factor in [1 - jitter, 1 + jitter]."""
    return float(seconds * rng.uniform(1.0 - jitter, 1.0 + jitter))


def retry_window_delay(min_seconds: float, max_seconds: float, rng: np.random.Generator) -> float:
    """A uniformly random delay in the coordinator's retry window [min, max]."""
    if not 0 <= min_seconds <= max_seconds:
        raise ValueError(f"bad retry window [{min_seconds}, {max_seconds}]")
    return float(rng.uniform(min_seconds, max_seconds)) if max_seconds > min_seconds else float(min_seconds)


def transient_delay(failures: int, policy: RetryPolicy, rng: np.random.Generator) -> float:
    """Backoff after the ``failures``-th transient error in a row (1-based).

    Exponential, capped, with "equal jitter": half the capped delay is fixed,
    the other half uniformly random, so retries both grow and spread out.
    """
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    exponent = min(failures - 1, 64)  # avoids overflow; the cap is reached long before
    capped = min(policy.transient_max_seconds, policy.transient_initial_seconds * policy.transient_multiplier**exponent)
    return float(capped / 2 + rng.uniform(0.0, capped / 2))


def permanent_delay(policy: RetryPolicy, rng: np.random.Generator) -> float:
    """Wait after a permanent error (jittered)."""
    return jittered(policy.permanent_seconds, policy.jitter, rng)


def ineligible_delay(policy: RetryPolicy, rng: np.random.Generator) -> float:
    """Wait before looking at the device's conditions again (jittered)."""
    return jittered(policy.ineligible_seconds, policy.jitter, rng)


@dataclasses.dataclass(frozen=True)
class SchedulerState:
    """What survives a restart: when to check in next, the transient-failure streak, an open session."""

    next_checkin: float = 0.0
    failures: int = 0
    open_session: str | None = None  # a session accepted but neither uploaded nor aborted
    open_token: str | None = None  # its upload token: aborting it needs the token (issue 14 point 7)


class StateStore:
    """Device ``device``'s ``SchedulerState`` in the ``state`` table of the device database."""

    _KEY = "scheduler"

    def __init__(self, db: DeviceDatabase, device: int) -> None:
        self._db = db
        self.device = int(device)

    def load(self) -> SchedulerState:
        rows = self._db.query("SELECT value FROM state WHERE device = ? AND key = ?", (self.device, self._KEY))
        if not rows:
            return SchedulerState()
        data = json.loads(rows[0][0])
        return SchedulerState(
            float(data["next_checkin"]), int(data["failures"]), data.get("open_session"), data.get("open_token")
        )

    def save(self, state: SchedulerState) -> None:
        self._db.execute(
            "INSERT INTO state (device, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT(device, key) DO UPDATE SET value = excluded.value",
            (self.device, self._KEY, json.dumps(dataclasses.asdict(state))),
        )
