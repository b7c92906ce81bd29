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
function, so its figures are tested exactly. The arrival rate is the whole
population's, shared by every coordinator process through the database
(:class:`PopulationArrivals`). Windows are in the coordinator's wall seconds,
like every time on the wire (``wire.protocol``, "Time"); an emulated fleet on a
faster clock converts them on its side and is steered like real phones.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import statistics
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol


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


def expected_end(opened_at: float, report_deadline: float, recent_durations: Sequence[float]) -> float:
    """When an open round is expected to end: its report deadline, or sooner if recent rounds took less
    (opened + the median of their durations)."""
    if not recent_durations:
        return report_deadline
    return min(report_deadline, opened_at + statistics.median(recent_durations))


def unavailable_window(cfg: PaceConfig) -> tuple[float, float]:
    """No work for this device for a while (paused, finished, no task, not capable)."""
    return cfg.unavailable_seconds, min(2 * cfg.unavailable_seconds, cfg.max_retry_seconds)


class ArrivalStore(Protocol):
    """Where every coordinator process of a population shares its check-in counts (``coordinator.arrivals``)."""

    def exchange(self, task_id: int, counts: Mapping[int, int], since: int) -> int | None:
        """Add this process's ``counts`` (whole second -> check-ins); the sum of every process's counts of the
        seconds at or after ``since``, or None when the store could not be reached (the counts are kept)."""
        ...


class ArrivalCounts:
    """One task's check-ins in this process, per whole second, until they are shared; and the last shared total."""

    def __init__(self) -> None:
        self.pending: collections.Counter[int] = collections.Counter()
        self.total = 0  # check-ins of the whole population within the window, as last read
        self.shared_at = -math.inf

    def observe(self, now: float) -> None:
        self.pending[math.floor(now)] += 1

    def take(self) -> dict[int, int]:
        out, self.pending = dict(self.pending), collections.Counter()
        return out

    def give_back(self, counts: Mapping[int, int]) -> None:
        self.pending.update(counts)


class PopulationArrivals:
    """The population's check-in rate across every coordinator process on every host.

    Pace steering needs the rate at which the whole population checks in, but
    each process sees only the check-ins routed to it. A process counts its
    own in memory (no write per check-in: the reject path stays cheap) and, at
    most once per ``share_seconds`` per task, adds its counts to the shared
    store (one row per process and second) and reads back the sum over the last
    ``window_seconds`` from all processes. The rate is that sum, plus this
    process's check-ins since, over the window: other processes' counts are at
    most ``share_seconds`` late; a dead process's rows age out of the window.
    """

    def __init__(self, store: ArrivalStore, window_seconds: float = 60.0, share_seconds: float = 1.0) -> None:
        if not window_seconds > 0 or not share_seconds > 0:
            raise ValueError(f"window_seconds ({window_seconds}) and share_seconds ({share_seconds}) must be > 0")
        self._store = store
        self._window = window_seconds
        self._share = share_seconds
        self._counts: dict[int, ArrivalCounts] = {}
        self._lock = threading.Lock()  # guards the in-memory counts
        self._sharing = threading.Lock()  # one exchange at a time

    def observe(self, task_id: int, now: float) -> None:
        """Count one check-in of ``task_id`` at ``now``; share the counts when due (``count``, then ``share``)."""
        if self.count(task_id, now):
            self.share(task_id, now)

    def count(self, task_id: int, now: float) -> bool:
        """Count one check-in of ``task_id`` at ``now`` in memory; True if the caller should ``share`` now.

        At most one caller per ``share_seconds`` is told to: the check-in path (an event loop) then hands
        the share to a thread, and every other check-in goes on with the last total.
        """
        with self._lock:
            counts = self._counts.get(task_id)
            if counts is None:
                counts = self._counts[task_id] = ArrivalCounts()
            counts.observe(now)
            if now - counts.shared_at < self._share:
                return False
            counts.shared_at = now
            return True

    def share(self, task_id: int, now: float) -> None:
        """Hand this process's counts of ``task_id`` to the store and read back the population's (one write)."""
        with self._lock:
            counts = self._counts.setdefault(task_id, ArrivalCounts())
        with self._sharing:
            self._exchange(task_id, counts, now)

    def _exchange(self, task_id: int, counts: ArrivalCounts, now: float) -> None:
        with self._lock:
            taken = counts.take()
            counts.shared_at = max(counts.shared_at, now)
        total = self._store.exchange(task_id, taken, math.floor(now - self._window) + 1)
        with self._lock:
            if total is None:
                counts.give_back(taken)
            else:
                counts.total = total

    def rate(self, task_id: int) -> float:
        """Check-ins per second of the whole population over the window: as last shared, plus this process's
        check-ins since (0 before any)."""
        with self._lock:
            counts = self._counts.get(task_id)
            return 0.0 if counts is None else (counts.total + counts.pending.total()) / self._window
