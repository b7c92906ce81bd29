"""The ``fedkeys`` subcommands of the devices area (registered by ``fedkeys.cli``).

``fedkeys devices emulate --coordinator URL --population NAME --data DIR --devices N``:
N emulated phones, each holding one training user's messages from a prepared
corpus, checking in, training through LiteRT and uploading until stopped
(Ctrl-C, ``--duration`` or ``--rounds``). Device state (examples, event log,
scheduler) lives in one database under ``--state-dir``, so a restarted emulator carries on.
The work is ``fedkeys.emulate`` (on ``device_runtime.emulator``); this module
reads the flags and draws the live status line.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    Parser,
    UsageError,
    add_alias,
    add_command,
    add_coordinator,
    add_group,
    api_key,
    build,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

logger = logging.getLogger(__name__)

_StatusLine = Callable[[dict[str, int], int | None, float], None]


@contextmanager
def _live(enabled: bool, devices: int) -> Iterator[_StatusLine | None]:
    """A live status line on the terminal (rich), or nothing."""
    if not enabled:
        yield None
        return
    from rich.live import Live

    from fedkeys.emulate import status_line

    with Live(refresh_per_second=4, transient=False) as live:
        yield lambda stats, rounds, now: live.update(status_line(stats, rounds, now, devices))


def _cmd_emulate(args: argparse.Namespace) -> int:
    from device_runtime import EligibilityPolicy, FleetConfig, SimClock
    from device_runtime.emulator import EmulatorConfig
    from fedkeys.emulate import StopRule, emulate, status_line

    fleet = build(
        FleetConfig,
        availability=args.availability,
        dropout=args.dropout,
        slow_fraction=args.slow_fraction,
        slow_factor=args.slow_factor,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    policy = build(
        EligibilityPolicy,
        min_battery=args.min_battery,
        min_examples=args.min_examples,
        min_separation_seconds=args.min_separation,
    )
    config = build(
        EmulatorConfig,
        population=args.population,
        state_dir=Path(args.state_dir),
        devices=args.devices,
        fleet=fleet,
        eligibility=policy,
        retention_seconds=args.retention_days * 86400.0,
        shared_cache=args.shared_cache,
    )
    key = api_key(args)
    if args.rounds is not None and key is None:
        raise UsageError("--rounds needs the admin key (--api-key-file or FEDKEYS_API_KEY) to read rounds committed")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request would drown the display
    clock = SimClock(args.start if args.start is not None else time.time(), args.speedup)
    stop = StopRule(rounds=args.rounds, duration=args.duration)
    with _live(not args.no_progress, args.devices) as on_update:
        result = emulate(
            Path(args.data),
            args.coordinator,
            config,
            clock,
            stop,
            api_key=key,
            check_tokenizer=not args.no_tokenizer_check,
            on_update=on_update,
        )
    print(status_line(result.stats, result.rounds_committed, result.end, args.devices))
    if result.stats["uploads"] == 0 and result.stats["errors"] > 0:
        raise UsageError(
            f"no phone uploaded and {result.stats['errors']} check-ins failed: is the coordinator at "
            f"{args.coordinator} still running? (-v shows each failure)"
        )
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    devices = add_group(
        sub,
        "devices",
        help="emulated phones",
        example="fedkeys devices emulate --population keyboard --data data/shakespeare --devices 50",
    )
    emulate = add_command(
        devices,
        "emulate",
        func=_cmd_emulate,
        help="run N emulated phones (one training user each) against a coordinator",
        example="FEDKEYS_API_KEY=$(cat key) fedkeys devices emulate --coordinator http://127.0.0.1:8000 "
        "--population keyboard --data data/shakespeare --devices 50 --speedup 720 --rounds 5",
    )
    emulate.add_flags(_emulate_flags)


def _emulate_flags(emulate: Parser) -> None:
    """The flags of ``devices emulate``; their defaults are device_runtime's (httpx, pydantic: added when it runs)."""
    from device_runtime import DeviceConfig, EligibilityPolicy, FleetConfig

    fleet, policy = FleetConfig(), EligibilityPolicy()
    retention_days = DeviceConfig.retention_seconds / 86400.0
    add_coordinator(emulate, key_help="else env FEDKEYS_API_KEY; needed for --rounds and to show rounds committed")
    add_alias(emulate, "--api-key", "--api-key-file or FEDKEYS_API_KEY (a key on the command line shows in ps)",
              "api_key", str)  # fmt: skip
    emulate.add_argument("--population", required=True, help="the population the devices belong to")
    emulate.add_argument("--data", required=True, help="a prepared corpus directory (fedkeys data prepare)")
    emulate.add_argument(
        "--devices", type=positive_int, required=True, help="how many phones (training users) to emulate"
    )
    emulate.add_argument(
        "--availability",
        choices=("always", "diurnal"),
        default=fleet.availability,
        help="always eligible, or only at night in each phone's time zone",
    )
    emulate.add_argument("--dropout", type=fraction, default=fleet.dropout, help="chance a session is interrupted")
    emulate.add_argument(
        "--speedup",
        type=positive_float,
        default=1.0,
        help="simulated seconds per real second (the coordinator's retry windows stay in real seconds)",
    )
    emulate.add_argument("--seed", type=non_negative_int, default=fleet.seed, help="users, habits, dropouts and jitter")
    emulate.add_argument("--concurrency", type=positive_int, default=fleet.concurrency, help="devices stepping at once")
    emulate.add_argument("--slow-fraction", type=fraction, default=fleet.slow_fraction, help="share of slow devices")
    emulate.add_argument(
        "--slow-factor", type=positive_float, default=fleet.slow_factor, help="how much slower they train (at least 1)"
    )
    emulate.add_argument("--state-dir", default="devices", help="where device databases and caches live")
    emulate.add_argument("--shared-cache", action="store_true", help="one download cache for all devices")
    emulate.add_argument(
        "--retention-days", type=positive_float, default=retention_days, help="example store retention"
    )
    emulate.add_argument(
        "--min-battery", type=fraction, default=policy.min_battery, help="eligibility: lowest battery level"
    )
    emulate.add_argument(
        "--min-examples", type=non_negative_int, default=policy.min_examples, help="eligibility: fewest stored examples"
    )
    emulate.add_argument(
        "--min-separation",
        type=non_negative_float,
        default=policy.min_separation_seconds,
        help="eligibility: simulated seconds between a device's participations",
    )
    emulate.add_argument("--start", type=float, help="simulated start (unix seconds; default: now)")
    emulate.add_argument("--duration", type=positive_float, help="stop after this many real seconds")
    emulate.add_argument(
        "--rounds", type=positive_int, help="stop once the task committed this many rounds (needs the admin key)"
    )
    emulate.add_argument("--no-tokenizer-check", action="store_true", help="accept plans of another tokenizer")
    emulate.add_argument("--no-progress", action="store_true", help="no live display")
