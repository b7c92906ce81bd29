"""A coordinator for the demo and the parity check: ``fedkeys serve`` as a child process, and its admin API.

The demo runs the real server, the way an operator would (Bonawitz et al. 2019:
the coordinator is a separate service devices reach over HTTP), on SQLite in
the demo's directory. :func:`coordinator_process` starts it on a free local
port, waits for ``/healthz`` and always stops it (SIGTERM to its process
group, then SIGKILL), whatever happens in the ``with`` block.
:class:`AdminAPI` is the few admin calls the demo needs (blobs, task, status,
rounds, models), over httpx.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from wire.manifest import MANIFEST_FILE, load_manifest
from wire.update import decode_weights, encode_weights

logger = logging.getLogger(__name__)

_API_KEY_HEADER = "X-API-Key"
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0


class CoordinatorProcessError(RuntimeError):
    """The coordinator subprocess did not start, or an admin call failed; the message names why."""


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


class AdminAPI:
    """The coordinator's admin endpoints the demo uses (``/v1/admin/...`` with the API key)."""

    def __init__(self, url: str, api_key: str, timeout: float = 120.0) -> None:
        self._http = httpx.Client(base_url=url, headers={_API_KEY_HEADER: api_key}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminAPI:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/v1/admin{path}", **kwargs)
        except httpx.HTTPError as err:
            raise CoordinatorProcessError(f"{method} {path}: cannot reach the coordinator: {err}") from err
        if response.status_code >= 400:
            raise CoordinatorProcessError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response

    def put_blob(self, data: bytes) -> str:
        response = self._request("PUT", "/blobs", content=data, headers={"Content-Type": "application/octet-stream"})
        return str(response.json()["sha256"])

    def create_task(self, plan_dir: Path, weights: Sequence[np.ndarray], **fields: Any) -> dict[str, Any]:
        """Upload the plan's files, its manifest and the initial weights, then create the task (``TaskCreate``)."""
        manifest = load_manifest(plan_dir, verify=True)
        manifest.check_tensors(list(weights), "initial weights")
        for name in sorted(manifest.files):
            self.put_blob((plan_dir / name).read_bytes())
        body = {
            "plan_sha256": self.put_blob((plan_dir / MANIFEST_FILE).read_bytes()),
            "checkpoint_sha256": self.put_blob(encode_weights(list(weights))),
            **fields,
        }
        return dict(self._request("POST", "/tasks", json=body).json())

    def status(self, population: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/populations/{population}").json())

    def rounds(self, population: str, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/populations/{population}/rounds", params={"limit": limit}).json())

    def model(self, population: str, version: int) -> list[np.ndarray]:
        return decode_weights(self._request("GET", f"/populations/{population}/models/{version}").content)

    def wait_committed(self, population: str, rounds: int, timeout: float) -> dict[str, Any]:
        """Poll the task's status until ``rounds`` rounds committed (CoordinatorProcessError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(population)
            if status["rounds_committed"] >= rounds:
                return status
            if time.monotonic() > deadline:
                raise CoordinatorProcessError(
                    f"{population}: {status['rounds_committed']} of {rounds} rounds committed after {timeout:.0f} s"
                )
            time.sleep(0.2)
