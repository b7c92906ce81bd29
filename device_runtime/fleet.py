"""Many emulated phones against one coordinator, on a simulated clock.

Each :class:`~device_runtime.device.Device` is stepped whenever its scheduler
says so; steps run on a bounded thread pool (``concurrency``), and a LiteRT
interpreter exists only while a device trains, so memory grows with the
concurrency, not with the fleet. The clock (``device_runtime.timebase.SimClock``)
runs ``speedup`` times faster than real time, so a day of diurnal availability
(``device_runtime.availability``) passes in minutes, while what the coordinator
says (retry windows, deadlines) stays in its wall seconds. The emulator also injects what real fleets do (Bonawitz et
al. 2019 §2, §9: devices drop out mid-round, some are slow): with probability
``dropout`` a session's user picks up the phone part-way through training, and
a ``slow_fraction`` of the devices train ``slow_factor`` times slower.

At scale (10,000 phones in one process, ``bench/fleet_scale.py``) an idle phone
costs a few rows and a small object, not a thread or a file: every device keeps
its rows in the fleet's one SQLite file (:func:`fleet_database`), the pool's
threads only run devices that are due, and a phone whose conditions forbid
training sleeps until its availability pattern next allows it (what the OS job
scheduler does for a job constrained to idle, charging and unmetered) instead
of waking every few minutes to find it is still daytime.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from device_runtime import event_log as ev
from device_runtime._sqlite import DeviceDatabase
from device_runtime.availability import AVAILABILITIES, Habits, conditions_at, next_available
from device_runtime.device import BatchHook, Device, StepOutcome
from device_runtime.eligibility import CONDITION_REASONS, NOT_IDLE, DeviceConditions
from device_runtime.timebase import SimClock

logger = logging.getLogger(__name__)

_FLEET_SALT = 0xF1EE7
SHUTDOWN = "shutdown"
FLEET_DATABASE_FILE = "devices.sqlite"


def fleet_database(state_dir: Path) -> DeviceDatabase:
    """The one database of every emulated device under ``state_dir`` (rows keyed by device)."""
    return DeviceDatabase(Path(state_dir) / FLEET_DATABASE_FILE)


@dataclasses.dataclass(frozen=True)
class FleetConfig:
    """How the emulated fleet behaves; defaults here, nowhere else."""

    availability: str = "always"
    dropout: float = 0.0  # probability that a session is interrupted part-way through training
    slow_fraction: float = 0.2  # share of devices that train slowly
    slow_factor: float = 3.0  # how much slower they are
    concurrency: int = 4  # device steps at once (each may hold one LiteRT interpreter)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.availability not in AVAILABILITIES:
            raise ValueError(f"availability must be one of {AVAILABILITIES}, got {self.availability!r}")
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {self.dropout!r}")
        if not 0.0 <= self.slow_fraction <= 1.0:
            raise ValueError(f"slow_fraction must be in [0, 1], got {self.slow_fraction!r}")
        if not self.slow_factor >= 1.0:
            raise ValueError(f"slow_factor must be >= 1, got {self.slow_factor!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be positive, got {self.concurrency!r}")


def device_conditions(config: FleetConfig, clock: SimClock, device: int) -> Callable[[], DeviceConditions]:
    """The conditions callback of emulated device ``device`` (its habits drawn from the fleet seed)."""
    habits = Habits.draw(config.seed, device)
    return lambda: conditions_at(config.availability, habits, clock.now())


def wake_time(config: FleetConfig, device: int, outcome: StepOutcome) -> float:
    """When to step ``device`` after ``outcome``: its own next check-in or, if its conditions forbid training then,
    when its availability window next opens (its conditions are ``device_conditions(config, ..., device)``)."""
    if outcome.kind != "ineligible" or outcome.detail not in CONDITION_REASONS:
        return outcome.next_checkin
    return next_available(config.availability, Habits.draw(config.seed, device), outcome.next_checkin)


def is_slow(config: FleetConfig, device: int) -> bool:
    return bool(np.random.default_rng([config.seed, _FLEET_SALT, device]).random() < config.slow_fraction)


@dataclasses.dataclass
class FleetStats:
    """Running counts for the progress display (updated under ``lock``)."""

    steps: int = 0
    checkins: int = 0
    ineligible: int = 0
    rejected: int = 0
    training: int = 0  # devices training right now
    uploads: int = 0
    interrupted: int = 0
    refused: int = 0
    errors: int = 0
    upload_bytes: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "lock"}


class Fleet:
    """Step ``devices`` (index i emulates device ``ids[i]``) until ``stop()`` says so."""

    def __init__(
        self, devices: Sequence[Device], clock: SimClock, config: FleetConfig, ids: Sequence[int] | None = None
    ) -> None:
        self.devices = list(devices)
        self.ids = list(ids) if ids is not None else list(range(len(self.devices)))
        self.clock = clock
        self.config = config
        self.stats = FleetStats()
        self._stopping = threading.Event()
        self._sessions = [0] * len(self.devices)
        self._training = [False] * len(self.devices)

    def _hook(self, index: int) -> BatchHook:
        """Dropout and slowness for one session of device ``index`` (drawn from (seed, device, session))."""
        device_id = self.ids[index]
        session = self._sessions[index]
        self._sessions[index] += 1
        rng = np.random.default_rng([self.config.seed, _FLEET_SALT, device_id, session])
        drop_at = rng.random() if rng.random() < self.config.dropout else None
        slow = self.config.slow_factor if is_slow(self.config, device_id) else 1.0
        last: list[float | None] = [None]

        def hook(batch: int, total: int) -> str | None:
            if not self._training[index]:
                self._training[index] = True
                with self.stats.lock:
                    self.stats.training += 1
            if self._stopping.is_set():
                return SHUTDOWN
            if slow > 1.0 and last[0] is not None:
                time.sleep((slow - 1.0) * (time.perf_counter() - last[0]))
            if drop_at is not None and batch >= int(drop_at * total):
                return NOT_IDLE  # the user picked the phone up
            last[0] = time.perf_counter()
            return None

        return hook

    def _step(self, index: int) -> StepOutcome:
        hook = self._hook(index)
        try:
            outcome = self.devices[index].step(hook)
        except Exception:  # one broken device must not stop the fleet; it is logged and backs off
            logger.exception("device %d: step failed", self.ids[index])
            outcome = StepOutcome(ev.ERROR, "crash", self.clock.now() + 600.0)
        with self.stats.lock:
            s = self.stats
            s.steps += 1
            if self._training[index]:
                self._training[index] = False
                s.training -= 1
            if outcome.kind == "ineligible":
                s.ineligible += 1
            else:
                s.checkins += 1
            if outcome.kind == ev.REJECTED:
                s.rejected += 1
            elif outcome.kind == ev.UPLOADED:
                s.uploads += 1
                s.upload_bytes += int(outcome.detail.split()[0])
            elif outcome.kind == ev.INTERRUPTED:
                s.interrupted += 1
            elif outcome.kind == ev.REFUSED:
                s.refused += 1
            elif outcome.kind == ev.ERROR:
                s.errors += 1
        return outcome

    def run(
        self,
        stop: Callable[[], bool],
        on_update: Callable[[FleetStats], None] | None = None,
        *,
        poll_seconds: float = 0.2,
    ) -> FleetStats:
        """Step devices when due until ``stop()``; running trainings are then interrupted and aborted."""
        due = [(d.state.next_checkin, i) for i, d in enumerate(self.devices)]
        heapq.heapify(due)
        running: dict[cf.Future[StepOutcome], int] = {}
        with cf.ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="device") as pool:
            while not stop():
                now = self.clock.now()
                while due and due[0][0] <= now and len(running) < self.config.concurrency:
                    _, index = heapq.heappop(due)
                    running[pool.submit(self._step, index)] = index
                if running:
                    wait = poll_seconds if not due else min(poll_seconds, self.clock.wall_seconds(due[0][0] - now))
                    done, _ = cf.wait(list(running), timeout=max(wait, 0.001), return_when=cf.FIRST_COMPLETED)
                else:
                    wait = poll_seconds if not due else self.clock.wall_seconds(due[0][0] - now)
                    time.sleep(min(max(wait, 0.001), poll_seconds))
                    done = set()
                for future in done:
                    index = running.pop(future)
                    heapq.heappush(due, (wake_time(self.config, self.ids[index], future.result()), index))
                if on_update is not None:
                    on_update(self.stats)
            self._stopping.set()
            for future in cf.as_completed(list(running)):
                future.result()
        return self.stats
