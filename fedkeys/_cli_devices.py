"""The ``fedkeys`` subcommands of the devices area (registered by ``fedkeys.cli``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    del sub


def domain_errors() -> tuple[type[BaseException], ...]:
    """This area's errors that mean bad input (shown as one line, exit 2)."""
    return ()


_ = argparse
