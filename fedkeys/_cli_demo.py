"""``fedkeys demo``: every step end to end on Shakespeare, into one report."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    PRESETS,
    add_command,
    build,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)

# DemoConfig fields settable from the command line: (flag type, help). Defaults are DemoConfig's.
_CHOICES = {"availability": ("always", "diurnal"), "codec": ("float32", "quant8", "quant4", "quant2")}
_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "corpus": (str, "a data prepare corpus spec"),
    "vocab_size": (positive_int, "vocabulary size"),
    "min_words": (non_negative_int, "drop users with fewer words"),
    "seq_len": (positive_int, "words a training row"),
    "batch_size": (positive_int, "rows a training step"),
    "proxy_fraction": (fraction, "share of users set aside as public/proxy data for pretraining"),
    "pretrain_epochs": (positive_int, "epochs of central pretraining on the proxy users"),
    "pretrain_max_steps": (positive_int, "cap on pretraining steps an epoch (default: all rows)"),
    "pretrain_lr": (positive_float, "Adam learning rate of the pretraining"),
    "rounds": (positive_int, "rounds of simulation and of deployment"),
    "clients_per_round": (positive_int, "clients (devices) a round"),
    "local_epochs": (positive_int, "passes over a client's rows a round"),
    "client_lr": (positive_float, "client SGD learning rate"),
    "max_rows": (positive_int, "cap on a client's rows a round"),
    "eval_every": (positive_int, "score validation recall every R rounds"),
    "eval_users": (positive_int, "validation users scored a round (a fixed sample)"),
    "devices": (positive_int, "emulated phones"),
    "availability": (str, "when phones may train: always, or diurnal (at their local night)"),
    "speedup": (
        positive_float,
        "emulated seconds per wall second of the emulated phones' clock, their day and night (720: a day in two "
        "wall minutes); the coordinator, its deadlines, the simulation and --fleet-timeout-s run on wall time",
    ),
    "dropout": (fraction, "chance a phone's session is interrupted"),
    "codec": (str, "update codec of the deployed task"),
    "concurrency": (positive_int, "phones training at once"),
    "fleet_timeout_s": (positive_float, "stop the fleet after this many real seconds"),
    "parity_clients": (non_negative_int, "clients of the parity check (0 skips it)"),
    "seed": (non_negative_int, "every seed of the demo"),
}


def _cmd_demo(args: argparse.Namespace) -> int:
    from data_tools import default_cache_dir
    from fedkeys.demo import run_demo
    from fedkeys.demo_config import DemoConfig

    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir(os.environ)
    settings: dict[str, Any] = {name: getattr(args, name) for name in _FLAGS}
    if args.data is not None:
        settings["data"] = Path(args.data)
    if args.init_from is not None:
        settings["init_from"] = Path(args.init_from)
    config = build(DemoConfig, preset=args.model, **settings)
    report = run_demo(Path(args.out), config, cache_dir=cache, progress=not args.no_progress)
    print(report)
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    from fedkeys.demo_config import DemoConfig

    defaults = DemoConfig()
    demo = add_command(
        sub,
        "demo",
        func=_cmd_demo,
        example="fedkeys demo --out runs/demo --rounds 4 --devices 60",
        help="end to end on Shakespeare: references, TFF simulation, export, coordinator, emulated phones",
    )
    demo.add_argument("--out", default="runs/demo", help="where the report (report.html) and every run go")
    demo.add_argument("--model", choices=PRESETS, default=defaults.preset, help="model size preset")
    demo.add_argument("--cache-dir", help="download cache (default $FEDKEYS_CACHE or ~/.cache/fedkeys)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--data", help="an already prepared corpus (skips the prepare step)")
    demo.add_argument(
        "--init-from", help="start simulation and deployment from this run instead of pretraining on proxy users"
    )
    for name, (kind, text) in _FLAGS.items():
        flag = f"--{name.replace('_', '-')}"
        demo.add_argument(flag, type=kind, choices=_CHOICES.get(name), default=getattr(defaults, name), help=text)
