"""An emulated fleet built from a corpus's training users: the library under ``fedkeys devices emulate``.

One phone per chosen training user, holding that user's messages (timestamps
rebased to the simulated clock), with its own state directory so a restarted
emulator carries on. :func:`emulated_fleet` builds the phones and a
:class:`~device_runtime.fleet.Fleet` over one shared HTTP client and always
closes them; :func:`run_until` steps the fleet until a stop condition, Ctrl-C
included. The demo and the CLI both call these; neither goes through the other.

The corpus comes in as :class:`UserMessages` (``data_tools.ClientData`` fits),
since device_runtime imports no corpus reader.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np

from device_runtime.client import CoordinatorClient, CoordinatorError
from device_runtime.device import Device, DeviceConfig
from device_runtime.eligibility import EligibilityPolicy
from device_runtime.example_store import StoredExample, rebase_timestamps
from device_runtime.fleet import Fleet, FleetConfig, FleetStats, device_conditions, fleet_database
from device_runtime.timebase import SimClock
from fedkeys_errors import FedkeysError

logger = logging.getLogger(__name__)

_USERS_SALT = 0xDE71CE
_DEVICE_DIR = "device-{user:06d}"
_PROBE_TIMEOUT_S = 5.0


class EmulatorError(FedkeysError, ValueError):
    """Emulator settings that cannot work (no devices, more devices than training users, ...)."""


class UserMessages(Protocol):
    """The training users' messages (``data_tools.ClientData`` has this shape)."""

    @property
    def num_clients(self) -> int: ...

    def client_examples(self, client: int) -> list[np.ndarray]: ...

    def client_timestamps(self, client: int) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """Which phones to emulate and how; defaults here, nowhere else."""

    population: str
    state_dir: Path
    devices: int
    fleet: FleetConfig = dataclasses.field(default_factory=FleetConfig)
    eligibility: EligibilityPolicy = dataclasses.field(default_factory=EligibilityPolicy)
    retention_seconds: float = DeviceConfig.retention_seconds
    shared_cache: bool = False  # one download cache for every phone (plans are the same bytes)
    tokenizer_sha256: str | None = None  # refuse plans of another tokenizer

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise EmulatorError(f"devices must be at least 1, got {self.devices}")
        if not self.retention_seconds > 0:
            raise EmulatorError(f"retention must be positive, got {self.retention_seconds!r} s")


def choose_users(num_clients: int, devices: int, seed: int) -> list[int]:
    """``devices`` distinct training users, sorted, drawn from ``seed`` (the same phones on every restart)."""
    if not 1 <= devices <= num_clients:
        raise EmulatorError(f"devices must be between 1 and the {num_clients} training users, got {devices}")
    order = np.random.default_rng([seed, _USERS_SALT]).permutation(num_clients)  # (num_clients,)
    return sorted(int(u) for u in order[:devices])


def probe(url: str) -> None:
    """Fail fast, naming ``url``, when no coordinator answers there (``/healthz``)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError as err:
        raise CoordinatorError(
            f"no coordinator answers at {url} ({type(err).__name__}: {err})", transient=True
        ) from err
    if response.status_code != 200:
        raise CoordinatorError(
            f"the coordinator at {url} is not healthy: /healthz -> {response.status_code}",
            transient=True,
            status=response.status_code,
        )


@contextlib.contextmanager
def emulated_fleet(config: EmulatorConfig, url: str, users: UserMessages, clock: SimClock) -> Iterator[Fleet]:
    """The fleet of ``config.devices`` phones against the coordinator at ``url``; closed when the block ends.

    A phone whose store is empty (first start) gets its user's messages; a restarted one keeps its own.
    """
    ids = choose_users(users.num_clients, config.devices, config.fleet.seed)
    probe(url)
    client = CoordinatorClient.connect(url, max_connections=max(8, 2 * config.fleet.concurrency))
    database = fleet_database(config.state_dir)  # every phone's rows in one file (device_runtime.fleet)
    devices: list[Device] = []
    try:
        for user in ids:
            device = Device(
                _device_config(config, user),
                client,
                conditions=device_conditions(config.fleet, clock, user),
                clock=clock,
                database=database,
            )
            devices.append(device)
            if device.examples.total() == 0:
                times = rebase_timestamps(users.client_timestamps(user).tolist(), clock.now())
                examples = users.client_examples(user)
                device.add_examples([StoredExample(e, t) for e, t in zip(examples, times, strict=True)])
        yield Fleet(devices, clock, config.fleet, ids=ids)
    finally:
        for device in devices:
            device.close()
        database.close()
        client.close()


def _device_config(config: EmulatorConfig, user: int) -> DeviceConfig:
    return DeviceConfig(
        population=config.population,
        client=user,
        directory=config.state_dir / _DEVICE_DIR.format(user=user),
        cache_directory=config.state_dir / "cache" if config.shared_cache else None,
        retention_seconds=config.retention_seconds,
        eligibility=config.eligibility,
        tokenizer_sha256=config.tokenizer_sha256,
        seed=config.fleet.seed,
    )


def run_until(
    fleet: Fleet, stop: Callable[[], bool], on_update: Callable[[FleetStats], None] | None = None
) -> FleetStats:
    """Step ``fleet`` until ``stop()`` or Ctrl-C (running trainings are then interrupted and aborted)."""
    interrupted = threading.Event()
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if on_main else None
    try:
        return fleet.run(lambda: interrupted.is_set() or stop(), on_update)
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
