"""``fedkeys suggest``: the suggestion strip of a trained model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fedkeys._cli_common import UsageError, add_command, positive_int


def _cmd_suggest(args: argparse.Namespace) -> int:
    from fedkeys.suggest import format_strip, interact, open_model

    model = Path(args.model)
    if not model.exists():
        raise UsageError(f"--model {model}: no such run directory or model file")
    suggester = open_model(model)
    for warning in suggester.warnings(args.k):
        print(f"fedkeys: warning: {warning}", file=sys.stderr)
    if args.interactive or args.text is None:
        interact(suggester, sys.stdin, sys.stdout, k=args.k, prompt="> " if sys.stdin.isatty() else "")
        return 0
    print(format_strip(suggester.strip(args.text, args.k), probabilities=not args.words_only))
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    sug = add_command(
        sub,
        "suggest",
        help="the top next words for a context",
        func=_cmd_suggest,
        example='fedkeys suggest --model runs/central "to be or not to"    # or -i for one context a line',
    )
    sug.add_argument("--model", required=True, help="a run directory, or ART/infer.tflite from `fedkeys export tflite`")
    sug.add_argument("-k", type=positive_int, default=3, help="how many words to suggest")
    sug.add_argument(
        "text", nargs="?", help="the words typed so far; omit it (or pass -i) to read one context a line from stdin"
    )
    sug.add_argument(
        "-i", "--interactive", action="store_true", help="read contexts from stdin, one a line, until EOF (Ctrl-D)"
    )
    sug.add_argument("--words-only", action="store_true", help="print the words without their probabilities")
