"""A coordinator for the demo and the parity check: ``fedkeys serve`` as a child process.

The demo runs the real server, the way an operator would (Bonawitz et al. 2019:
the coordinator is a separate service devices reach over HTTP), on SQLite in
the demo's directory. :func:`coordinator_process` starts it on a free local
port, waits for ``/healthz`` and always stops it (SIGTERM to its process
group, then SIGKILL), whatever happens in the ``with`` block. Its admin API
is driven with :class:`fedkeys.admin_client.AdminClient`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from fedkeys_errors import FedkeysError

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0


class CoordinatorProcessError(FedkeysError):
    """The coordinator subprocess did not start; the message names why (and quotes its log)."""


@dataclasses.dataclass(frozen=True)
class RunningCoordinator:
    url: str
    api_key: str
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextlib.contextmanager
def coordinator_process(work_dir: Path, *, tick_seconds: float = 0.2) -> Iterator[RunningCoordinator]:
    """``fedkeys serve`` on SQLite in ``work_dir`` (db.sqlite, server.log), stopped when the block ends."""
    work_dir.mkdir(parents=True, exist_ok=True)
    api_key = secrets.token_urlsafe(24)
    key_file = work_dir / "api_key"
    key_file.write_text(api_key)
    key_file.chmod(0o600)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
    cmd = [sys.executable, "-m", "fedkeys.cli", "serve", "--db", f"sqlite:///{work_dir / 'db.sqlite'}",
           "--port", str(port), "--api-key-file", str(key_file), "--tick-seconds", str(tick_seconds)]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise CoordinatorProcessError(f"fedkeys serve exited with {proc.returncode}: {_tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise CoordinatorProcessError(f"fedkeys serve did not answer in {_START_TIMEOUT_S:.0f} s")
            time.sleep(0.3)
        logger.info("coordinator up at %s (log %s)", url, log_path)
        yield RunningCoordinator(url, api_key, log_path)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=_STOP_TIMEOUT_S)
