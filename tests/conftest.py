"""Suite-wide guards.

TensorFlow Federated starts a C++ ``worker_binary`` that inherits stdout and
can outlive Python, so a forgotten one hangs ``... | tail`` and CI. Any test
that leaves one running fails the session, and the orphan is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _worker_binaries() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")[0]
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline.endswith(b"worker_binary") and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="session", autouse=True)
def no_leftover_tff_workers() -> Iterator[None]:
    before = set(_worker_binaries())
    yield
    leftover = sorted(set(_worker_binaries()) - before)
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not leftover, f"tests left TFF worker_binary processes running (killed): {leftover}"
