"""The ``fedkeys`` command: one entry point, a subcommand area per module.

Each area (``fedkeys._cli_data``, ``_cli_baselines``, ``_cli_sim``,
``_cli_export``, ``_cli_suggest``, ``_cli_serve``, ``_cli_admin``, ``_cli_devices``,
``_cli_demo``) registers its subcommands the same way
(``register(sub)`` with ``fedkeys._cli_common.add_command``); its handlers read
the flags, build a typed config and call a library function. Heavy imports
(TensorFlow) happen inside the handlers, so ``fedkeys --help`` is quick and a bad
flag is refused before them; flags whose defaults live in a heavy package are
added only when their command runs (``Parser.add_flags``), so ``fedkeys suggest``
on a ``.tflite`` imports only the tokenizer and LiteRT.

A :class:`~fedkeys_errors.FedkeysError` (bad input, a refusal, a coordinator
out of reach) ends with one ``fedkeys: error: ...`` line and exit status 2.
Anything else is a bug: its traceback is shown and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from fedkeys import (
    _cli_admin,
    _cli_baselines,
    _cli_common,
    _cli_data,
    _cli_demo,
    _cli_devices,
    _cli_export,
    _cli_serve,
    _cli_sim,
    _cli_suggest,
)
from fedkeys_errors import FedkeysError

logger = logging.getLogger("fedkeys")

# Every command area, in the order of `fedkeys --help`.
_AREAS = (
    _cli_data, _cli_baselines, _cli_sim, _cli_export, _cli_suggest, _cli_serve, _cli_admin, _cli_devices, _cli_demo,
)  # fmt: skip


def _quiet_tensorflow() -> None:
    # TensorFlow reads these at import; set before any subcommand imports it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    # fedkeys forks only to exec TFF's worker_binary; gRPC's fork handlers are for children that
    # keep using gRPC, and with a runtime's threads running they only log and get in the way.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


def _version() -> str:
    try:
        return metadata.version("fedkeys")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser(*, defer_flags: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``defer_flags`` (``main``) adds a command's heavy flags only when it runs."""
    parser_class = _cli_common.DeferringParser if defer_flags else _cli_common.Parser
    parser = parser_class(
        prog="fedkeys",
        description="Federated training of a phone keyboard's next-word model.",
        epilog="example:\n  fedkeys demo            # every step end to end, report in runs/demo/report.html\n"
        "  fedkeys COMMAND --help  # each command's flags, defaults and an example",
        formatter_class=_cli_common.HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (also after the subcommand)")
    parser.add_argument("--version", action="version", version=f"fedkeys {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # parsers of parser_class
    for area in _AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(defer_flags=True)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a bad flag (its one line already printed)
        return done.code if isinstance(done.code, int) else 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _quiet_tensorflow()
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("fedkeys: interrupted", file=sys.stderr)
        return 130
    except FedkeysError as err:
        logger.debug("refused", exc_info=True)
        print(f"fedkeys: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
