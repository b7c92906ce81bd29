"""Check-ins per second and latency of ``fedkeys serve`` at 64 concurrent clients, SQLite vs PostgreSQL.

Starts the real server (uvicorn, ``--workers`` processes) on each database,
creates two populations, and drives 64 concurrent clients (one asyncio httpx
process) for a fixed time against each:

- ``accept``: a round with room for every device, so each check-in is an
  assignment (a conditional UPDATE of the round row plus a session INSERT);
- ``reject``: a full round, so each check-in is a rejection with a pace-steered
  retry window (reads only).

The load generator shares the machine's cores with the server, so the figures
are a floor. All numbers come from one run.

    .venv/bin/python bench/coordinator_checkin.py [--clients 64] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import numpy as np

from wire.manifest import PlanManifest, TensorSpec
from wire.update import encode_weights

API_KEY = "bench-key"
CREDENTIAL_KEY = b"bench-credential-key-32-bytes-ok"  # the server's key file: the load mints one device a request
CHECKIN = {"client_version": "bench", "runtime": "bench", "codecs": ["quant8"], "example_count": 100}
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_GROUPS: dict[str, int] = {}  # url -> process group of the server that serving() runs there


def server_cpu_seconds(url: str) -> float:
    """User + system CPU seconds of the live processes of the server at ``url`` (every worker; Linux /proc)."""
    group, ticks = _GROUPS[url], 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except OSError:
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(
    cmd: Sequence[str], log_path: Path, url: str, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Iterator[str]:
    """Run ``cmd`` in its own process group until ``url/healthz`` answers; stop the group on exit."""
    log = log_path.open("wb")
    proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _GROUPS[url] = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[2]} did not start: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.contextmanager
def server(
    db_url: str, workers: int, workdir: Path, *, env_extra: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[str]:
    """``fedkeys serve`` in its own process group (``env_extra``: more ``FEDKEYS_*``; ``args``: more flags)."""
    port = free_port()
    key = workdir / "key"
    key.write_text(API_KEY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
    (workdir / "credential-key").write_bytes(CREDENTIAL_KEY)
    env["FEDKEYS_CREDENTIAL_KEY_FILE"] = str(workdir / "credential-key")
    env.update(env_extra or {})
    cmd = [
        sys.executable,
        "-m",
        "fedkeys.cli",
        "serve",
        "--db",
        db_url,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--api-key-file",
        str(key),
        *args,
    ]
    with serving(cmd, workdir / f"server-{port}.log", f"http://127.0.0.1:{port}", env=env, timeout=60) as url:
        yield url


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    import psycopg

    name = f"fk_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def create_tasks(url: str) -> None:
    """Two populations of a small plan: one with room for everyone, one full after the first device."""
    shapes = ((1000, 16), (16,))
    train = b"bench plan"
    manifest = PlanManifest(
        format_version=1,
        model_version="bench",
        model_config={},
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(shapes)),
        batch_size=8,
        seq_len=20,
        signatures={"train": {"inputs": [], "outputs": []}},
        hyperparameters={},
        tokenizer_sha256="0" * 64,
        files={"train.tflite": hashlib.sha256(train).hexdigest()},
    )
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
        put = lambda data: c.put("/v1/admin/blobs", content=data).json()["sha256"]  # noqa: E731
        put(train)
        plan = put(manifest.to_json().encode())
        ckpt = put(encode_weights([np.zeros(s, np.float32) for s in shapes]))
        common = {"plan_sha256": plan, "checkpoint_sha256": ckpt, "codec": "quant8"}
        long = {"selection_seconds": 3600, "report_seconds": 7200}
        # accept: a round of 1,000,000 slots (the largest goal, over-selected 10x); reject: one slot
        for population, goal, over in (("accept", 100_000, 10.0), ("reject", 1, 1.0)):
            task = {"population": population, "goal_count": goal, "over_selection": over}
            r = c.post("/v1/admin/tasks", json=common | long | task)
            r.raise_for_status()
        c.post("/v1/populations/reject/checkin", json=device("reject")).raise_for_status()  # fills the one slot


def device(population: str) -> dict[str, object]:
    """A check-in of a fresh device (its own credential: one session a round, one check-in per interval)."""
    from coordinator.credentials import issue

    return CHECKIN | {"credential": issue(CREDENTIAL_KEY, population, time.time() + 86400)[0]}


def handler_buckets(text: str) -> dict[float, float]:
    """Cumulative counts of ``fedkeys_handler_seconds{operation="checkin"}`` by upper bound (all workers)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fedkeys_handler_seconds_bucket" and sample.labels.get("operation") == "checkin":
                le = float(sample.labels["le"])
                out[le] = out.get(le, 0.0) + sample.value
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the histogram bucket holding quantile ``q`` of the observations between two scrapes."""
    deltas = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = deltas[-1][1] if deltas else 0.0
    for le, cumulative in deltas:
        if total and cumulative >= q * total:
            return le
    return float("nan")


async def load(
    url: str, population: str, clients: int, seconds: float
) -> tuple[list[float], dict[str, int], tuple[float, float]]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client(stop: float) -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    r = await client.post(f"/v1/populations/{population}/checkin", json=device(population))
                except httpx.HTTPError as err:  # e.g. a kept-alive connection the server closed: count it
                    key = type(err).__name__
                else:
                    latencies.append(time.perf_counter() - start)
                    key = r.json().get("outcome", str(r.status_code)) if r.status_code == 200 else str(r.status_code)
                outcomes[key] = outcomes.get(key, 0) + 1

        await asyncio.gather(*(one_client(time.perf_counter() + 1.0) for _ in range(clients)))  # warm-up
        latencies.clear()
        outcomes.clear()
        before = handler_buckets((await client.get("/metrics")).text)
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one_client(started + seconds) for _ in range(clients)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = handler_buckets((await client.get("/metrics")).text)
    server = (bucket_quantile(before, after, 0.5), bucket_quantile(before, after, 0.99))
    outcomes["_elapsed_ms"] = int(elapsed * 1000)
    outcomes["_client_cpu_ms"] = int(cpu * 1000)
    return latencies, outcomes, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(
        f"{args.clients} concurrent clients, {args.seconds:.0f} s per phase, {args.workers} uvicorn workers, "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    print("client-observed latency; 'handler' = time inside the coordinator's check-in handler (database included,")
    print("HTTP stack and queueing excluded), as the upper bound of its Prometheus histogram bucket;")
    print("'client CPU' = the load generator's share of one core (it competes with the server)")
    print(
        f"{'database':<11}{'phase':<8}{'check-ins':>10}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'handler p50':>13}{'p99':>7}{'client CPU':>12}  outcomes"
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        backends = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if not args.no_postgres:
            backends.append(("PostgreSQL", stack.enter_context(postgres_schema())))
        for name, db_url in backends:
            with server(db_url, args.workers, Path(tmp)) as url:
                create_tasks(url)
                for phase in ("accept", "reject"):
                    latencies, outcomes, (h50, h99) = asyncio.run(load(url, phase, args.clients, args.seconds))
                    elapsed = outcomes.pop("_elapsed_ms") / 1000
                    client_cpu = outcomes.pop("_client_cpu_ms") / 1000
                    ms = np.array(latencies) * 1e3
                    print(
                        f"{name:<11}{phase:<8}{len(ms):>10}{len(ms) / elapsed:>8.0f}{np.percentile(ms, 50):>9.1f}"
                        f"{np.percentile(ms, 99):>9.1f}{'<=' + format(h50 * 1e3, 'g'):>13}"
                        f"{'<=' + format(h99 * 1e3, 'g'):>7}{client_cpu / elapsed:>11.0%}  {outcomes}"
                    )


if __name__ == "__main__":
    main()
