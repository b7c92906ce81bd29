"""What every ``fedkeys`` command area shares: its parser, checked flag types, the admin key.

Every area module (``fedkeys._cli_*``) has ``register(sub)``, which adds its
subcommands with :func:`add_command`, so every subcommand gets the same
things: help that shows each default (:class:`HelpFormatter`), an example
(``epilog``), ``-v`` after the subcommand, and a one-line ``fedkeys: error:``
for a bad flag (:class:`Parser`). Flag values are checked by their ``type``
(:func:`positive_int`, :func:`port` ...) while parsing, so a bad value is
named by its flag before anything heavy is imported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from fedkeys_errors import FedkeysError

API_KEY_ENV = "FEDKEYS_API_KEY"
COORDINATOR_ENV = "FEDKEYS_COORDINATOR"
DEFAULT_COORDINATOR = "http://127.0.0.1:8000"
PRESETS = ("tiny", "small", "gboard")

_T = TypeVar("_T")


class UsageError(FedkeysError):
    """A flag or file the command line named is wrong; the message names it."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``fedkeys: error: ...`` and exit status 2.

    Flags given to :meth:`add_flags` are added at once; a :class:`DeferringParser`
    adds them only when it first parses, i.e. when its command is the one run.
    """

    defer_flags: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_flags: list[Callable[[Parser], None]] = []

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"fedkeys: error: {self.prog}: {message} (see {self.prog} --help)\n")

    def add_flags(self, flags: Callable[[Parser], None]) -> None:
        """``flags(self)`` now, or with ``defer_flags`` just before this parser first parses."""
        if self.defer_flags:
            self._pending_flags.append(flags)
        else:
            flags(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:  # argparse calls it for a chosen subcommand
        while self._pending_flags:
            self._pending_flags.pop(0)(self)
        return super().parse_known_args(*args, **kwargs)


class DeferringParser(Parser):
    """A :class:`Parser` (and, through ``add_subparsers``, every parser under it) that defers
    :meth:`~Parser.add_flags` until its command runs: a command whose flag defaults come from a heavy
    package (``devices emulate``: httpx, pydantic, secagg) then costs nothing to ``fedkeys suggest``."""

    defer_flags = True


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default, and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text
        if shown and action.option_strings:
            text += " (default: %(default)s)"
        return text


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    example: str,
    func: Callable[[argparse.Namespace], int] | None = None,
    description: str | None = None,
) -> Parser:
    """A subcommand with help, an example epilog and ``-v``; ``func`` handles it."""
    parser: Parser = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter,
    )
    add_verbose(parser)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def add_group(sub: Any, name: str, *, help: str, example: str) -> Any:
    """A command area with actions of its own (``fedkeys NAME ACTION``); its subparsers."""
    group = add_command(sub, name, help=help, example=example)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")  # parsers of group's own class


def add_verbose(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand without -v leaves the top-level flag's value alone.
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")


class _DeprecatedAlias(argparse.Action):
    """An old flag name that still works, with a warning naming the new one (hidden from --help)."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_: Any) -> None:
        print(f"fedkeys: warning: {self.option_strings[0]} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, kind: Callable[[str], Any]) -> None:
    """Accept ``old`` as a deprecated spelling of ``new`` (same ``dest``), hidden from the help."""
    parser.add_argument(
        old, dest=dest, type=kind, action=_DeprecatedAlias, new=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


# ---------------------------------------------------------------- checked flag types


def _number(kind: Callable[[str], _T], text: str) -> _T:
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(float, text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(float, text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def port(text: str) -> int:
    value = _number(int, text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port between 0 and 65535, got {value}")
    return value


# ---------------------------------------------------------------- the admin key and the coordinator


def add_coordinator(parser: argparse.ArgumentParser, *, key_help: str) -> None:
    """``--coordinator URL`` (env FEDKEYS_COORDINATOR) and ``--api-key-file`` (env FEDKEYS_API_KEY)."""
    default = os.environ.get(COORDINATOR_ENV) or os.environ.get("FEDKEYS_URL") or DEFAULT_COORDINATOR
    parser.add_argument(
        "--coordinator", default=default, metavar="URL", help=f"the coordinator's base URL (env {COORDINATOR_ENV})"
    )
    add_alias(parser, "--url", "--coordinator", "coordinator", str)
    parser.add_argument("--api-key-file", metavar="FILE", help=f"file holding the admin key, {key_help}")


def api_key(args: argparse.Namespace) -> str | None:
    """The admin key from ``--api-key-file`` or the FEDKEYS_API_KEY environment variable (never a flag: ``ps``)."""
    deprecated = getattr(args, "api_key", None)  # `devices emulate --api-key KEY`: still read, with a warning
    if deprecated:
        return str(deprecated)
    path = getattr(args, "api_key_file", None)
    if not path:
        return os.environ.get(API_KEY_ENV) or None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise UsageError(f"--api-key-file {path}: cannot read it ({err.strerror or err})") from None
    if not key:
        raise UsageError(f"--api-key-file {path}: the file is empty")
    return key


def build(kind: Callable[..., _T], **fields: Any) -> _T:
    """A config from flags; its own validation error (a ValueError of bad values) becomes one line.

    Only the config's constructor is guarded: a ValueError anywhere else is a bug and keeps its traceback.
    """
    try:
        return kind(**fields)
    except ValueError as err:
        raise UsageError(str(err)) from None


def print_table(title: str, rows: dict[str, Any]) -> None:
    print(title)
    for key, value in rows.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value)
        print(f"  {key:<22} {shown}")


def add_output(parser: argparse.ArgumentParser, *, progress: bool = True) -> None:
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
