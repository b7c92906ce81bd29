"""A fleet of emulated phones on a prepared corpus until a task has committed its rounds.

The job behind ``fedkeys devices emulate`` and the demo's fleet step: it
composes ``data_tools`` (the training users' messages), ``device_runtime``
(:func:`~device_runtime.emulator.emulated_fleet`, the phones) and the
admin client (rounds committed, the stop condition). The caller renders
progress through ``on_update``; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from device_runtime.emulator import EmulatorConfig, EmulatorError, emulated_fleet, run_until
from device_runtime.fleet import FleetStats
from device_runtime.timebase import SimClock
from fedkeys.admin_client import AdminClient, AdminError

logger = logging.getLogger(__name__)

_POLL_SECONDS = 2.0
_LOG_SECONDS = 30.0


def status_line(stats: dict[str, int], rounds: int | None, sim_time: float, devices: int) -> str:
    """One line of what the fleet is doing (the live display, and the demo's log every 30 s)."""
    day = time.strftime("%a %H:%M", time.gmtime(sim_time))
    return (
        f"[{day} UTC] rounds committed {rounds if rounds is not None else '?'} | devices {devices} | "
        f"training {stats['training']} | check-ins {stats['checkins']} | uploads {stats['uploads']} "
        f"({stats['upload_bytes'] / 2**20:.1f} MiB) | rejected {stats['rejected']} | "
        f"interrupted {stats['interrupted']} | refused {stats['refused']} | errors {stats['errors']} | "
        f"ineligible {stats['ineligible']}"
    )


def log_status(devices: int, every_s: float = _LOG_SECONDS) -> Callable[[dict[str, int], int | None, float], None]:
    """An ``on_update`` for :func:`emulate` that logs the status line at most every ``every_s`` seconds."""
    last = [time.monotonic()]

    def update(stats: dict[str, int], rounds: int | None, now: float) -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            logger.info("fleet: %s", status_line(stats, rounds, now, devices))

    return update


@dataclasses.dataclass(frozen=True)
class EmulationResult:
    """What a fleet run did: the simulated span, the fleet's counts and the task's committed rounds."""

    start: float  # simulated unix seconds: the clock's start
    end: float
    stats: dict[str, int]
    rounds_committed: int | None  # None without an admin key


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When the fleet stops: after ``rounds`` committed rounds (needs the admin key) or ``duration`` real seconds."""

    rounds: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.rounds is not None and self.rounds < 1:
            raise EmulatorError(f"rounds must be at least 1, got {self.rounds}")
        if self.duration is not None and not self.duration > 0:
            raise EmulatorError(f"duration must be positive, got {self.duration!r} s")


class _Rounds:
    """Rounds committed by the task, polled at most every two seconds (None while unknown)."""

    def __init__(self, url: str, population: str, api_key: str | None) -> None:
        self._admin = AdminClient(url, api_key, timeout=10.0) if api_key else None
        self._population = population
        self._last = 0.0
        self.value: int | None = None

    def poll(self, *, force: bool = False) -> int | None:
        if self._admin is not None and (force or time.monotonic() - self._last >= _POLL_SECONDS):
            self._last = time.monotonic()
            try:
                self.value = self._admin.status(self._population).rounds_committed
            except AdminError as err:  # the fleet keeps running; the display shows '?'
                logger.debug("status poll failed: %s", err)
        return self.value

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()


def emulate(
    data_dir: Path,
    url: str,
    config: EmulatorConfig,
    clock: SimClock,
    stop: StopRule,
    *,
    api_key: str | None = None,
    check_tokenizer: bool = True,
    on_update: Callable[[dict[str, int], int | None, float], None] | None = None,
) -> EmulationResult:
    """Run ``config``'s phones on ``data_dir``'s training users against ``url`` until ``stop``.

    ``on_update(stats, rounds_committed, simulated_now)`` is called after every scheduling pass.
    """
    from data_tools import load_prepared

    if stop.rounds is not None and not api_key:
        raise AdminError("stopping after a number of rounds needs the admin key (--api-key-file or FEDKEYS_API_KEY)")
    import model  # noqa: F401  (row building loads TensorFlow: pay for it before the simulated clock starts)

    corpus = load_prepared(Path(data_dir))
    if check_tokenizer:
        config = dataclasses.replace(config, tokenizer_sha256=corpus.tokenizer.sha256)
    rounds = _Rounds(url, config.population, api_key)
    started = time.monotonic()

    def done() -> bool:
        if stop.duration is not None and time.monotonic() - started >= stop.duration:
            return True
        committed = rounds.poll()
        return stop.rounds is not None and committed is not None and committed >= stop.rounds

    def update(stats: FleetStats) -> None:
        if on_update is not None:
            on_update(stats.snapshot(), rounds.value, clock.now())

    try:
        with emulated_fleet(config, url, corpus.train, clock) as fleet:
            stats = run_until(fleet, done, update).snapshot()
        return EmulationResult(clock.start, clock.now(), stats, rounds.poll(force=True))
    finally:
        rounds.close()
