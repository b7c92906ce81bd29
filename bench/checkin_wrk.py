"""Check-ins/s and p99 of ``fedkeys serve`` against a bare FastAPI endpoint, same uvicorn stack, driven by wrk.

Issue 15 point 1. Three targets, each under uvicorn with the same workers,
event loop and HTTP parser, each driven by ``wrk`` (a C load generator, so
the client is not the bottleneck; it shares the machine's cores with the
server) at 64 and 256 connections for a fixed time with the same Lua script,
which POSTs a check-in body carrying a device credential:

- ``bare``: a FastAPI app with one ``async`` POST endpoint that reads the body
  and returns a small JSON rejection (the framework's ceiling);
- ``reject``: the real coordinator, a population whose one-slot round is full,
  so every check-in is a ``round_full`` rejection with a pace-steered window;
- ``assign``: the real coordinator, a population whose round has 1,000,000 slots, so
  every check-in is an assignment.

Credentials: the server's credential key is a file the bench writes, so the
bench mints credentials itself (``coordinator.credentials.issue``, as
enrollment would) instead of enrolling each device over HTTP. The per-credential
rate limit is switched off (``FEDKEYS_CHECKIN_MIN_SECONDS=0``) and every assign
request uses a fresh credential (wrk's Lua rotates through a file of them,
one slice per wrk thread), so no assignment is refused as ``already_assigned``;
the outcomes column (from the server's Prometheus counters) shows it. The
reject population rotates through 1,000 credentials.

All figures come from one run; the ratios are against ``bare`` at the same
connection count and stack, measured right before each target (on a shared
machine the load drifts between runs). ``CPU us/req`` is the server's own CPU
time (every process of it, from /proc) per answered request, and its ratio
``bare / target``: the throughput ratio a server that has the cores to itself
would reach, and the figure least moved by other load on the machine.

    .venv/bin/python bench/checkin_wrk.py [--seconds 10] [--workers 1] [--stacks uvloop/httptools,asyncio/h11]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from coordinator_checkin import (
    CREDENTIAL_KEY,
    PG_URL,
    create_tasks,
    free_port,
    postgres_schema,
    server,
    server_cpu_seconds,
    serving,
)
from fastapi import FastAPI, Request

_LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local path, file, nthreads = args[1], args[2], tonumber(args[3])
  creds = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then table.insert(creds, line) end
    i = i + 1
  end
  next_cred = 1
  target = path
  prefix = '{"client_version":"bench","runtime":"bench","codecs":["quant8"],"example_count":100,"credential":"'
  headers = {["Content-Type"] = "application/json"}
end
function request()
  local cred = creds[next_cred]
  next_cred = next_cred % #creds + 1
  return wrk.format("POST", target, headers, prefix .. cred .. '"}')
end
"""


def bare_app() -> FastAPI:
    """The bare framework: one POST endpoint that reads the JSON body and returns a small JSON rejection."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/populations/{population}/checkin")
    async def checkin(population: str, request: Request) -> dict[str, object]:
        await request.json()
        return {"outcome": "rejected", "reason": "round_full", "retry_window": {"min_seconds": 5, "max_seconds": 10}}

    return app


@contextlib.contextmanager
def bare_server(workers: int, loop: str, http: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "--factory",
           "checkin_wrk:bare_app",
           "--port", str(port), "--workers", str(workers), "--loop", loop, "--http", http, "--no-access-log",
           "--log-level", "warning"]  # fmt: skip
    with serving(cmd, workdir / f"bare-{port}.log", f"http://127.0.0.1:{port}", timeout=30) as url:
        yield url


@dataclass(frozen=True)
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: str  # socket errors and non-2xx responses as wrk reports them ("" if none)
    cpu_us: float = float("nan")  # the server's CPU time (all its processes) per request, microseconds


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> WrkResult:
    """wrk's ``--latency`` report as numbers."""
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (p50 and p99 and total and rate):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = [
        m.group(0).strip() for m in re.finditer(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", out, re.M)
    ]
    return WrkResult(int(total.group(1)), float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), "; ".join(errors))


def wrk(url: str, population: str, creds: Path, connections: int, seconds: float, threads: int, lua: Path) -> WrkResult:
    path = f"/v1/populations/{population}/checkin"
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "30s",
           "-s", str(lua), url, "--", path, str(creds), str(threads)]  # fmt: skip
    cpu = server_cpu_seconds(url)
    result = parse_wrk(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    cpu = server_cpu_seconds(url) - cpu
    return dataclasses.replace(result, cpu_us=1e6 * cpu / max(result.requests, 1))


def mint(path: Path, population: str, count: int) -> Path:
    """``count`` fresh credentials of ``population``, one a line (what enrollment would hand out)."""
    from coordinator.credentials import issue

    expires = time.time() + 86400
    path.write_text("".join(issue(CREDENTIAL_KEY, population, expires)[0] + "\n" for _ in range(count)))
    return path


def outcomes(url: str) -> dict[str, float]:
    """``fedkeys_checkins_total`` by outcome/reason (all workers), from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for s in family.samples:
            if s.name == "fedkeys_checkins_total":
                key = s.labels.get("reason") or s.labels.get("outcome", "?")
                out[key] = out.get(key, 0.0) + s.value
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", default="64,256")
    parser.add_argument("--stacks", default="uvloop/httptools", help="comma-separated loop/http pairs")
    parser.add_argument("--assign-credentials", type=int, default=80_000, help="fresh credentials per assign run")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--phases", default="reject,assign", help="comma-separated: reject, assign")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("checkin_wrk: wrk is not on PATH; install it (Debian: apt-get install wrk)")
    conns = [int(c) for c in args.connections.split(",")]
    print(f"wrk -t{args.threads}, {args.seconds:g} s per run, {args.workers} uvicorn worker(s), {os.cpu_count()} CPUs "
          "shared by server and wrk; p50/p99 are wrk's; ratios vs bare at the same connections and stack")  # fmt: skip
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'stack':<18}{'target':<20}{'conns':>6}{'req/s':>9}{'x bare':>8}{'p50 ms':>9}{'p99 ms':>9}{'x bare':>8}"
          f"{'CPU us/req':>11}{'x bare':>8}  outcomes / errors")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lua = tmp / "checkin.lua"
        lua.write_text(_LUA)
        reject_creds = mint(tmp / "reject.txt", "reject", 1000)
        for pair in args.stacks.split(","):
            loop, http = pair.split("/")
            with bare_server(args.workers, loop, http, tmp) as bare_url:
                for name in ("SQLite", "PostgreSQL"):
                    if name == "PostgreSQL" and (args.no_postgres or not _postgres_up()):
                        continue
                    if name == "SQLite" and args.no_sqlite:
                        continue
                    with contextlib.ExitStack() as stack:
                        db_url = (
                            f"sqlite:///{tmp / f'{loop}-{http}.db'}"
                            if name == "SQLite"
                            else stack.enter_context(postgres_schema())
                        )
                        env = {"FEDKEYS_CHECKIN_MIN_SECONDS": "0"}
                        url = stack.enter_context(
                            server(db_url, args.workers, tmp, env_extra=env, args=["--loop", loop, "--http", http])
                        )
                        create_tasks(url)
                        for c in conns:
                            for phase in args.phases.split(","):
                                bare = _bare(bare_url, pair, c, args, lua, reject_creds)
                                _measure(url, name, phase, c, args, tmp, lua, reject_creds, pair, bare)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


def _bare(url: str, pair: str, c: int, args: argparse.Namespace, lua: Path, creds: Path) -> WrkResult:
    """The bare endpoint, measured right before each target (the shared machine's load drifts)."""
    wrk(url, "bare", creds, c, 2, args.threads, lua)  # warm-up
    r = wrk(url, "bare", creds, c, args.seconds, args.threads, lua)
    _row(pair, "bare", c, r, r, r.errors)
    return r


def _measure(
    url: str, db: str, phase: str, c: int, args: argparse.Namespace, tmp: Path, lua: Path, reject_creds: Path,
    pair: str, bare: WrkResult,
) -> None:  # fmt: skip
    """One warm-up and one measured wrk run of ``phase`` (fresh credentials for every assign request)."""
    if phase == "assign":
        population = "accept"
        wrk(url, population, mint(tmp / "warm.txt", population, 5000), c, 2, args.threads, lua)
        creds = mint(tmp / f"assign-{c}.txt", population, args.assign_credentials)
    else:
        population, creds = "reject", reject_creds
        wrk(url, population, creds, c, 2, args.threads, lua)
    before = outcomes(url)
    r = wrk(url, population, creds, c, args.seconds, args.threads, lua)
    seen = _delta(before, outcomes(url))
    _row(pair, f"{db} {phase}", c, r, bare, f"{seen} {r.errors}".strip())


def _postgres_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _row(stack: str, target: str, conns: int, r: WrkResult, bare: WrkResult, note: str) -> None:
    print(f"{stack:<18}{target:<20}{conns:>6}{r.per_second:>9.0f}{r.per_second / bare.per_second:>8.2f}"
          f"{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.p99_ms / bare.p99_ms:>8.2f}"
          f"{r.cpu_us:>11.0f}{bare.cpu_us / r.cpu_us:>8.2f}  {note}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
