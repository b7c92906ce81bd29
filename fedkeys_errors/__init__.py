"""fedkeys_errors: the one root of every fedkeys domain error.

:class:`FedkeysError` means "the input or the situation is wrong, and the
message says what to change" (a bad corpus line, a tampered manifest, a
refused admin request, a coordinator out of reach). Anything else raised
inside fedkeys is a bug. The ``fedkeys`` command prints a ``FedkeysError`` as
one ``fedkeys: error: ...`` line (exit 2) and lets every other exception show
its traceback (exit 1).

This package imports nothing, so every package may import it, including
``data_tools``, ``model`` and ``wire``, which import none of the project's
others (tests/test_layering.py).
"""

from __future__ import annotations

__all__ = ["FedkeysError"]


class FedkeysError(Exception):
    """A domain error whose message names the bad value and, where it can, the fix."""
