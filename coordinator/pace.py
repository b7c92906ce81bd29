"""Pace steering: the retry window told to a device that was not assigned.

Bonawitz et al. 2019 (§2.3): the server does not set fixed back-off times; it
tells each rejected device when to come back so that, for a small population,
enough devices are connected at once when the next round selects, and for a
large one, returning devices are spread out instead of arriving as a thundering
herd. Here the window starts when the next selection is expected to open, and
its width scales the selection window by how much the observed check-in rate
exceeds what the next round needs (``target / selection_seconds`` devices a
second): spread over ``ratio`` selection windows, about ``1 / ratio`` of the
returning devices land in the next one, which is what it needs. A pure
function, so its figures are tested exactly.
"""

from __future__ import annotations

import collections
import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class PaceConfig:
    min_retry_seconds: float = 5.0  # never ask a device back sooner than this
    max_retry_seconds: float = 3600.0  # nor later than this
    unavailable_seconds: float = 600.0  # no task / paused / finished / device not fit (wrong codec)

    def __post_init__(self) -> None:
        if not 0 <= self.min_retry_seconds <= self.max_retry_seconds:
            raise ValueError(
                f"need 0 <= min_retry_seconds ({self.min_retry_seconds}) <= max_retry_seconds "
                f"({self.max_retry_seconds})"
            )
        if not self.min_retry_seconds <= self.unavailable_seconds <= self.max_retry_seconds:
            raise ValueError(f"unavailable_seconds {self.unavailable_seconds} outside [min, max] retry")


@dataclasses.dataclass(frozen=True)
class PaceInputs:
    """What the population needs and what it gets."""

    seconds_to_next_selection: float  # until the next round is expected to select (0: one is selecting now)
    next_target: int  # assignments the next round hands out
    selection_seconds: float  # how long a round selects
    arrival_rate: float  # check-ins per second observed across the population (all workers)


def retry_window(p: PaceInputs, cfg: PaceConfig) -> tuple[float, float]:
    """(min_seconds, max_seconds) for a device rejected now."""
    start = min(max(p.seconds_to_next_selection, cfg.min_retry_seconds), cfg.max_retry_seconds)
    demand = p.next_target / p.selection_seconds  # devices per second the next selection needs
    ratio = max(1.0, p.arrival_rate / demand) if demand > 0 else 1.0
    width = p.selection_seconds * ratio
    return start, min(start + width, cfg.max_retry_seconds)


def unavailable_window(cfg: PaceConfig) -> tuple[float, float]:
    """No work for this device for a while (paused, finished, no task, not capable)."""
    return cfg.unavailable_seconds, min(2 * cfg.unavailable_seconds, cfg.max_retry_seconds)


class ArrivalRate:
    """Check-ins per second over a sliding window, counted in this process.

    Several worker processes each see about ``1 / workers`` of the traffic, so the
    estimate is scaled by the worker count (documented approximation; no shared
    write per check-in).
    """

    def __init__(self, window_seconds: float = 60.0, scale: float = 1.0) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        self._window = window_seconds
        self._scale = scale
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def observe(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            return self._scale * len(self._times) / self._window

    def _trim(self, now: float) -> None:
        cut = now - self._window
        while self._times and self._times[0] <= cut:
            self._times.popleft()
