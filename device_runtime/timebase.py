"""The device's clock and the coordinator's: one notion of time for a phone, real or emulated.

The rule (``wire.protocol``, "Time"): every duration and instant on the wire is
the coordinator's wall clock. A real phone's clock is that clock (both follow
NTP), so nothing converts: :class:`WallClock`. An emulated fleet lives on a
clock ``speedup`` times faster (:class:`SimClock`), so that a day of diurnal
availability passes in minutes. Its phones keep their own habits in emulated
seconds (when they are idle, charging and on Wi-Fi, the minimum separation
between participations, how often they look at their conditions, their own
back-off) and turn what the coordinator tells them into emulated seconds with
:meth:`SimClock.device_seconds`, the one place a wall duration becomes an
emulated one (:meth:`SimClock.wall_seconds` is the way back, for the fleet's
scheduler). Instants on the wire (a session's deadline, a credential's expiry)
are compared with :meth:`DeviceClock.wall_now`, the coordinator's time.

Why the fleet converts, rather than running the coordinator on the emulated
clock (its ``create_app`` takes a clock, so tests can drive deadlines): pace
steering (Bonawitz et al. 2019, "Towards Federated Learning at Scale: System
Design", §2.3) is the server steering its own load. The window it gives a
rejected device starts when its next selection is expected to open and is
widened by the check-in rate it observes (``coordinator.pace``), and both are
measured in the time in which the server does real work: a round waits for real
downloads and real LiteRT training, a partial sum's lease and the arrival
window are real processes' heartbeats. On a clock 720 times faster the demo's
120 s report deadline would be 0.17 real seconds, shorter than one device's
training, and every round would be abandoned; and the coordinator is a separate
service (several processes and hosts over one database) that should not carry
a simulation knob. The emulator is what warps time, so the emulator translates,
as Flower's simulation engine runs the server's strategy unchanged and emulates
only the clients. The price is visible and honest: at 720x a retry window of
[30, 60] wall seconds is 6 to 12 hours of a phone's emulated life, because the
fleet's day passes 720 times faster than the server's rounds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Protocol


class DeviceClock(Protocol):
    """What a device asks of its clock (``device_runtime.device.Device``)."""

    def now(self) -> float:
        """The device's own time, seconds since the epoch (its habits, event log and schedule run on it)."""
        ...

    def wall_now(self) -> float:
        """The coordinator's time now, for instants on the wire (``deadline_unix``, ``expires_unix``)."""
        ...

    def device_seconds(self, wall_seconds: float) -> float:
        """A duration the coordinator gave (its wall seconds, e.g. a retry window) in the device's seconds."""
        ...


@dataclasses.dataclass(frozen=True)
class WallClock:
    """A real phone: its time is the coordinator's, so wall durations pass unchanged."""

    wall: Callable[[], float] = time.time

    def now(self) -> float:
        return self.wall()

    def wall_now(self) -> float:
        return self.wall()

    def device_seconds(self, wall_seconds: float) -> float:
        return wall_seconds


class SimClock:
    """Seconds since the epoch on a clock that runs ``speedup`` times faster than real time from ``start``.

    ``real`` measures elapsed real time (monotonic); ``wall`` is the coordinator's clock (seconds since the
    epoch) for instants on the wire. Tests pass one fake function as both.
    """

    def __init__(
        self,
        start: float,
        speedup: float,
        real: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not math.isfinite(speedup) or speedup <= 0:
            raise ValueError(f"speedup must be a positive number, got {speedup!r}")
        self.start = start
        self.speedup = speedup
        self._real = real
        self._wall = wall
        self._real0 = real()

    def now(self) -> float:
        return self.start + (self._real() - self._real0) * self.speedup

    def wall_now(self) -> float:
        return self._wall()

    def device_seconds(self, wall_seconds: float) -> float:
        """``wall_seconds`` of the coordinator's time as emulated seconds (``speedup`` times as many)."""
        return wall_seconds * self.speedup

    def wall_seconds(self, device_seconds: float) -> float:
        """``device_seconds`` of emulated time as real (wall) seconds: the inverse of :meth:`device_seconds`."""
        return device_seconds / self.speedup
