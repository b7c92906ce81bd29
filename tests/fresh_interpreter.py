"""Run a snippet in a fresh interpreter and say which heavy packages it imported.

The coordinator side, the run logs and LiteRT suggestions must work where TensorFlow is absent (or too slow to
load), and the test process itself has TensorFlow loaded already, so each such check runs its code path in a new
``python -c`` and looks at that interpreter's ``sys.modules`` afterwards. This is the suite's one copy of that
check; tests assert on what :func:`run_fresh` returns.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterable

TENSORFLOW = ("tensorflow",)
"""The watch list of a test that asserts only that TensorFlow itself stayed out."""

_MARK = "fresh_interpreter:imported="


@dataclasses.dataclass(frozen=True)
class FreshRun:
    """What the snippet printed (its stdout, unchanged) and which watched top-level packages it had imported."""

    stdout: str
    imported: list[str]


def run_fresh(script: str, watch: Iterable[str] = TENSORFLOW, timeout: float = 120) -> FreshRun:
    """Run ``script`` with this interpreter in a new process, then list which of ``watch`` are in its modules.

    The listing is appended to the script, so it sees every import the script made (directly or lazily). A
    failing script raises :class:`subprocess.CalledProcessError` (its stderr attached).
    """
    probe = (
        "\nimport json as _json, sys as _sys\n"
        f"_watch = set({sorted(set(watch))!r})\n"
        f"print({_MARK!r} + _json.dumps(sorted(_watch & {{_m.split('.')[0] for _m in _sys.modules}})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script + probe], capture_output=True, text=True, timeout=timeout, check=True
    )
    own, mark, listing = done.stdout.rpartition(_MARK)
    assert mark, f"the snippet ended before the import listing; stdout: {done.stdout!r}"
    return FreshRun(stdout=own, imported=json.loads(listing))
