"""``fedkeys suggest``: the suggestion strip of a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedkeys._cli_common import UsageError, add_command, positive_int


def _cmd_suggest(args: argparse.Namespace) -> int:
    from fedkeys.suggest import suggest

    model = Path(args.model)
    if not model.exists():
        raise UsageError(f"--model {model}: no such run directory or model file")
    print(" | ".join(suggest(model, args.text, k=args.k)))
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    sug = add_command(
        sub,
        "suggest",
        help="the top next words for a context",
        func=_cmd_suggest,
        example='fedkeys suggest --model runs/central "to be or not to"',
    )
    sug.add_argument("--model", required=True, help="a run directory, or ART/infer.tflite from `fedkeys export tflite`")
    sug.add_argument("-k", type=positive_int, default=3, help="how many words to suggest")
    sug.add_argument("text", help="the words typed so far")
