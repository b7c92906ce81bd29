"""Helpers of the coordinator tests: a tiny exported plan, a fake clock, task creation over any httpx client."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from wire.manifest import MANIFEST_FORMAT_VERSION, PlanManifest, TensorSpec
from wire.protocol import API_KEY_HEADER
from wire.update import encode_weights

API_KEY = "test-admin-key"
SHAPES: tuple[tuple[int, ...], ...] = ((3, 4), (5,), (2, 2))
TRAIN_TFLITE = b"not really a tflite flatbuffer, but bytes with a hash"


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def sql_statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends, from any thread, while inside (first word, upper)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def initial_weights() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def manifest_json(shapes: tuple[tuple[int, ...], ...] = SHAPES) -> bytes:
    manifest = PlanManifest(
        format_version=MANIFEST_FORMAT_VERSION,
        model_version="test-plan",
        model_config={"preset": "test"},
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(shapes)),
        batch_size=2,
        seq_len=4,
        signatures={"train": {"inputs": ["x"], "outputs": ["loss"]}},
        hyperparameters={},
        tokenizer_sha256="0" * 64,
        files={"train.tflite": hashlib.sha256(TRAIN_TFLITE).hexdigest()},
    )
    return manifest.to_json().encode()


def admin_headers() -> dict[str, str]:
    return {API_KEY_HEADER: API_KEY}


def create_task(client: Any, population: str = "keyboard", **overrides: Any) -> dict[str, Any]:
    """Upload the plan, its file and the checkpoint as blobs, then create the task (any httpx-like client)."""
    response = post_task(client, population, **overrides)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def post_task(client: Any, population: str = "keyboard", **overrides: Any) -> Any:
    """:func:`create_task`'s request, whatever its answer."""
    h = admin_headers()
    plan = client.put("/v1/admin/blobs", content=manifest_json(), headers=h).json()["sha256"]
    client.put("/v1/admin/blobs", content=TRAIN_TFLITE, headers=h).raise_for_status()
    ckpt = client.put("/v1/admin/blobs", content=encode_weights(initial_weights()), headers=h).json()["sha256"]
    body = {
        "population": population,
        "plan_sha256": plan,
        "checkpoint_sha256": ckpt,
        "goal_count": 2,
        "over_selection": 1.5,
        "codec": "float32",
        "selection_seconds": 60,
        "report_seconds": 600,
        "max_rows": 8,
    } | overrides
    return client.post("/v1/admin/tasks", json=body, headers=h)


CHECKIN = {"client_version": "test-1", "runtime": "litert-2.3", "codecs": ["float32", "quant8"], "example_count": 10}


def enroll(client: Any, population: str = "keyboard", *, base: str = "") -> str:
    """A fresh device credential (any httpx-like client, or the httpx module with ``base``; open enrollment)."""
    response = client.post(f"{base}/v1/populations/{population}/enroll", json={"client_version": "test-1"})
    assert response.status_code == 200, response.text
    return str(response.json()["credential"])


def checkin_body(client: Any, population: str = "keyboard", *, base: str = "", **changes: Any) -> dict[str, Any]:
    """CHECKIN with a freshly enrolled device's credential (one device a check-in)."""
    return CHECKIN | {"credential": enroll(client, population, base=base)} | changes


# ---------------------------------------------------------------- real servers (subprocesses)

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


class PostgresSchema:
    """A fresh schema in the test database (dropped with everything in it at exit)."""

    def __init__(self) -> None:
        import secrets

        self.name = f"fk_test_{secrets.token_hex(6)}"
        self.url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{self.name}"

    def __enter__(self) -> PostgresSchema:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


class Server:
    """``fedkeys serve`` in its own process group; ``kill()`` is kill -9 of the whole group."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        workers: int = 2,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),  # e.g. ("ip", "netns", "exec", NAME): run on another (namespace) host
    ) -> None:
        self.db_url = db_url
        self.workdir = workdir
        self.workers = workers
        self.port = port or free_port()
        self.host = host
        self.prefix = prefix
        self.url = f"http://{host}:{self.port}"
        self.proc: Any = None

    def start(self, timeout: float = 180.0) -> Server:
        import os
        import subprocess
        import sys
        import time

        import httpx

        key_file = self.workdir / "api-key"
        key_file.write_text(API_KEY)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
        metrics_dir = self.workdir / f"metrics-{self.port}-{time.monotonic_ns()}"  # fresh per start, in tmp_path
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        log = (self.workdir / f"server-{self.port}.log").open("ab")
        cmd = [
            *self.prefix,
            sys.executable,
            "-m",
            "fedkeys.cli",
            "serve",
            "--db",
            self.db_url,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--api-key-file",
            str(key_file),
            "--tick-seconds",
            "0.2",
        ]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.workdir / f"server-{self.port}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """kill -9 the server and its workers (its own process group), then reap it."""
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        import contextlib
        import os
        import signal
        import subprocess

        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind, if any
        self.proc.wait(timeout=30)
