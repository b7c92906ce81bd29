"""The ``fedkeys`` subcommands of the devices area (registered by ``fedkeys.cli``).

``fedkeys devices emulate --coordinator URL --population NAME --data DIR --devices N``:
N emulated phones, each holding one training user's messages from a prepared
corpus, checking in, training through LiteRT and uploading until stopped
(Ctrl-C, ``--duration`` or ``--rounds``). Device state (examples, event log,
scheduler) lives in one database under ``--state-dir``, so a restarted emulator carries on.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _status(client: Any, population: str, api_key: str | None) -> int | None:
    """Rounds committed so far (admin API), or None if unknown."""
    if api_key is None:
        return None
    import httpx

    from wire.protocol import API_KEY_HEADER, API_PREFIX, TaskStatus

    try:
        response = client.get(f"{API_PREFIX}/admin/populations/{population}", headers={API_KEY_HEADER: api_key})
        response.raise_for_status()
        return TaskStatus.model_validate_json(response.content).rounds_committed
    except (httpx.HTTPError, ValueError) as err:
        logger.debug("status poll failed: %s", err)
        return None


def _line(stats: dict[str, int], rounds: int | None, sim_time: float, devices: int) -> str:
    day = time.strftime("%a %H:%M", time.gmtime(sim_time))
    return (
        f"[{day} UTC] rounds committed {rounds if rounds is not None else '?'} | devices {devices} | "
        f"training {stats['training']} | check-ins {stats['checkins']} | uploads {stats['uploads']} "
        f"({stats['upload_bytes'] / 2**20:.1f} MiB) | rejected {stats['rejected']} | "
        f"interrupted {stats['interrupted']} | refused {stats['refused']} | errors {stats['errors']} | "
        f"ineligible {stats['ineligible']}"
    )


def _cmd_emulate(args: argparse.Namespace) -> int:
    import httpx
    import numpy as np

    from data_tools import load_prepared
    from device_runtime import (
        CoordinatorClient,
        Device,
        DeviceConfig,
        EligibilityPolicy,
        Fleet,
        FleetConfig,
        SimClock,
        StoredExample,
        device_conditions,
        fleet_database,
        rebase_timestamps,
    )

    fleet_config = FleetConfig(
        availability=args.availability,
        dropout=args.dropout,
        slow_fraction=args.slow_fraction,
        slow_factor=args.slow_factor,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    policy = EligibilityPolicy(
        min_battery=args.min_battery, min_examples=args.min_examples, min_separation_seconds=args.min_separation
    )
    if args.rounds is not None and args.api_key is None:
        raise ValueError("--rounds needs --api-key (the emulator reads the coordinator's admin status)")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request would drown the display
    import model  # noqa: F401  (row building loads TensorFlow: pay for it before the simulated clock starts)

    corpus = load_prepared(Path(args.data))
    train = corpus.train
    if not 1 <= args.devices <= train.num_clients:
        raise ValueError(f"--devices must be between 1 and the {train.num_clients} training users, got {args.devices}")
    users = np.sort(np.random.default_rng([args.seed, 0xDE71CE]).permutation(train.num_clients)[: args.devices])
    clock = SimClock(args.start if args.start is not None else time.time(), args.speedup)
    state_dir = Path(args.state_dir)
    client = CoordinatorClient.connect(args.coordinator, max_connections=max(8, 2 * args.concurrency))
    database = fleet_database(state_dir)
    devices = []
    for user in users.tolist():
        directory = state_dir / f"device-{user:06d}"
        config = DeviceConfig(
            population=args.population,
            client=user,
            directory=directory,
            cache_directory=state_dir / "cache" if args.shared_cache else None,
            retention_seconds=args.retention_days * 86400.0,
            eligibility=policy,
            tokenizer_sha256=None if args.no_tokenizer_check else corpus.tokenizer.sha256,
            seed=args.seed,
        )
        conditions = device_conditions(fleet_config, clock, user)
        device = Device(config, client, conditions=conditions, clock=clock.now, database=database)
        if device.examples.total() == 0:
            times = rebase_timestamps(train.client_timestamps(user).tolist(), clock.now())
            examples = train.client_examples(user)
            device.add_examples([StoredExample(e, t) for e, t in zip(examples, times, strict=True)])
        devices.append(device)
    fleet = Fleet(devices, clock, fleet_config, ids=users.tolist())

    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    started = time.monotonic()
    status_http = httpx.Client(base_url=args.coordinator, timeout=10.0)
    rounds: list[int | None] = [None]
    last_poll = [0.0]

    def poll() -> None:
        if time.monotonic() - last_poll[0] >= 2.0:
            last_poll[0] = time.monotonic()
            rounds[0] = _status(status_http, args.population, args.api_key)

    def stop() -> bool:
        if interrupted.is_set():
            return True
        if args.duration is not None and time.monotonic() - started >= args.duration:
            return True
        return args.rounds is not None and rounds[0] is not None and rounds[0] >= args.rounds

    try:
        if args.no_progress:
            fleet.run(stop, lambda _s: poll())
        else:
            from rich.live import Live

            with Live(refresh_per_second=4, transient=False) as live:

                def update(stats: Any) -> None:
                    poll()
                    live.update(_line(stats.snapshot(), rounds[0], clock.now(), len(devices)))

                fleet.run(stop, update)
    finally:
        signal.signal(signal.SIGINT, previous)
        for device in devices:
            device.close()
        database.close()
        client.close()
        status_http.close()
    print(_line(fleet.stats.snapshot(), _status_final(args), clock.now(), len(devices)))
    return 0


def _status_final(args: argparse.Namespace) -> int | None:
    import httpx

    with httpx.Client(base_url=args.coordinator, timeout=10.0) as client:
        return _status(client, args.population, args.api_key)


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    from device_runtime import DeviceConfig, EligibilityPolicy, FleetConfig

    fleet, policy = FleetConfig(), EligibilityPolicy()
    retention_days = DeviceConfig(population="p", client=0, directory=Path(".")).retention_seconds / 86400.0
    devices = sub.add_parser("devices", help="emulated phones").add_subparsers(dest="action", required=True)
    emulate = devices.add_parser("emulate", help="run N emulated phones (one training user each) against a coordinator")
    emulate.add_argument("--coordinator", required=True, help="the coordinator's base URL, e.g. http://127.0.0.1:8000")
    emulate.add_argument("--population", required=True, help="the population the devices belong to")
    emulate.add_argument("--data", required=True, help="a prepared corpus directory (fedkeys data prepare)")
    emulate.add_argument("--devices", type=int, required=True, help="how many phones (training users) to emulate")
    emulate.add_argument(
        "--availability",
        choices=("always", "diurnal"),
        default=fleet.availability,
        help="always eligible, or only at night in each phone's time zone",
    )
    emulate.add_argument("--dropout", type=float, default=fleet.dropout, help="chance a session is interrupted")
    emulate.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per real second")
    emulate.add_argument("--seed", type=int, default=fleet.seed, help="users, habits, dropouts and jitter")
    emulate.add_argument("--concurrency", type=int, default=fleet.concurrency, help="devices stepping at once")
    emulate.add_argument("--slow-fraction", type=float, default=fleet.slow_fraction, help="share of slow devices")
    emulate.add_argument("--slow-factor", type=float, default=fleet.slow_factor, help="how much slower they train")
    emulate.add_argument("--state-dir", default="devices", help="where device databases and caches live")
    emulate.add_argument("--shared-cache", action="store_true", help="one download cache for all devices")
    emulate.add_argument("--retention-days", type=float, default=retention_days, help="example store retention")
    emulate.add_argument("--min-battery", type=float, default=policy.min_battery, help="eligibility threshold")
    emulate.add_argument("--min-examples", type=int, default=policy.min_examples, help="eligibility threshold")
    emulate.add_argument(
        "--min-separation",
        type=float,
        default=policy.min_separation_seconds,
        help="simulated seconds between a device's participations",
    )
    emulate.add_argument("--start", type=float, default=None, help="simulated start (unix seconds; default now)")
    emulate.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    emulate.add_argument("--rounds", type=int, default=None, help="stop once the task committed this many rounds")
    emulate.add_argument("--api-key", default=None, help="coordinator admin key, to show rounds committed")
    emulate.add_argument("--no-tokenizer-check", action="store_true", help="accept plans of another tokenizer")
    emulate.add_argument("--no-progress", action="store_true", help="no live display")
    emulate.set_defaults(func=_cmd_emulate)


def domain_errors() -> tuple[type[BaseException], ...]:
    """This area's errors that mean bad input (shown as one line, exit 2)."""
    from data_tools import CorpusError

    return (CorpusError,)
