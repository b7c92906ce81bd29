"""Rate limits kept in process memory, so a refused request costs no database write.

``MinInterval``: at most one check-in per credential every ``min_seconds``
(issue 14 point 5). The check-in path reads and writes a dict, never the
database, so a client hammering with one credential is refused in
microseconds. Per process: with W workers a client may get W check-ins through
in one interval; the hard guarantee (one session per credential per round) is
the database's unique key, this only keeps the refusals cheap.

``TokenBucket``: enrollments per client address (the open-enrollment guard).

Both forget their least recently seen keys past ``max_keys`` (an LRU), so
memory stays bounded whatever a client sends.
"""

from __future__ import annotations

import collections
import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until the key may try again (0 when allowed)


class MinInterval:
    """At most one event per key every ``min_seconds`` (refused events do not reset the clock)."""

    def __init__(self, min_seconds: float, *, max_keys: int = 100_000) -> None:
        if min_seconds < 0 or max_keys < 1:
            raise ValueError(f"need min_seconds >= 0 and max_keys >= 1, got {min_seconds}, {max_keys}")
        self.min_seconds = min_seconds
        self._max_keys = max_keys
        self._last: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, key: str, now: float) -> Verdict:
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.min_seconds:
                return Verdict(False, self.min_seconds - (now - last))
            self._last[key] = now
            self._last.move_to_end(key)
            if len(self._last) > self._max_keys:
                self._last.popitem(last=False)
            return Verdict(True, 0.0)


class TokenBucket:
    """Per key: up to ``burst`` events at once, refilled at ``per_minute`` a minute."""

    def __init__(self, burst: int, per_minute: float, *, max_keys: int = 100_000) -> None:
        if burst < 1 or per_minute <= 0 or max_keys < 1:
            raise ValueError(f"need burst >= 1, per_minute > 0, max_keys >= 1; got {burst}, {per_minute}, {max_keys}")
        self.burst = burst
        self.per_second = per_minute / 60.0
        self._max_keys = max_keys
        self._state: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def attempt(self, key: str, now: float) -> Verdict:
        with self._lock:
            tokens, at = self._state.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._state[key] = (tokens, now)
            self._state.move_to_end(key)
            if len(self._state) > self._max_keys:
                self._state.popitem(last=False)
            return Verdict(allowed, 0.0 if allowed else (1.0 - tokens) / self.per_second)
