"""One ``fedkeys devices emulate`` process of 10,000 phones, and a round of 1,000 of them, end to end.

Issue 15 point 4. Real processes, real HTTP: ``fedkeys serve`` (SQLite by
default, ``--db postgresql``) and ``fedkeys devices emulate`` with diurnal
availability, on a synthetic corpus of ``--devices`` typing users (a few short
messages each) and the ``tiny`` model, so training is cheap and the figures are
about the fleet and the server, not LiteRT:

1. writes and prepares the corpus (``fedkeys data prepare``), exports the tiny
   plan (``fedkeys export tflite``), starts the coordinator and creates a task
   of one round with goal ``--goal`` and target ``goal * --over-selection``
   (Bonawitz et al. 2019 §2.2: some phones leave mid-round when their night
   window ends, and a round must not wait for them);
2. runs the emulator until that round commits, sampling its resident memory
   (``/proc/PID/status``) and the round's progress (admin API) every 0.5 s;
3. prints one JSON line: the emulator's memory once every phone is loaded
   (before the first assignment; TensorFlow, imported for row building, is
   most of it) and at its peak, setup time (start to first assignment), round
   time (first assignment to commit), and the emulator's check-ins and uploads
   per second from its first assignment to its exit, and the CPU seconds the
   emulator and the server used (two cores, shared with whatever else runs).

    .venv/bin/python bench/fleet_scale.py [--devices 10000] [--goal 1000] [--speedup 60] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

API_KEY = "fleet-scale-bench"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
START_UNIX = 1_767_571_200.0  # a midnight UTC: about a quarter of the phones are in their night
_WORDS = [f"w{i}" for i in range(400)]


def _fedkeys(*args: str, log: Path | None = None, wait: bool = True) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")}
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedkeys.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,
    )  # fmt: skip
    if wait and proc.wait() != 0:
        raise RuntimeError(f"fedkeys {' '.join(args[:2])} failed: {log.read_text()[-2000:] if log else ''}")
    return proc


def _corpus(path: Path, users: int, messages: int, seed: int) -> None:
    """``users`` typists, each ``messages`` messages of 4-9 words from a Zipf-like 400-word vocabulary."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(_WORDS) + 1)
    p /= p.sum()
    with path.open("w", encoding="utf-8") as f:
        for u in range(users):
            for m in range(messages):
                text = " ".join(_WORDS[i] for i in rng.choice(len(_WORDS), size=int(rng.integers(4, 10)), p=p))
                f.write(json.dumps({"user_id": f"u{u:06d}", "text": text, "timestamp": 1_700_000_000 + m}) + "\n")


def _plan(work: Path, prepared: Path) -> tuple[Path, Path]:
    from data_tools import load_prepared
    from model import ModelConfig, build_model
    from model.checkpoint import save_model

    vocab = load_prepared(prepared).tokenizer.vocab_size
    run, art = work / "run", work / "plan"
    config = ModelConfig.from_preset("tiny", vocab_size=vocab)
    save_model(run / "checkpoint", config, build_model(config, seed=0))
    shutil.copyfile(prepared / "tokenizer.model", run / "tokenizer.model")
    _fedkeys("export", "tflite", "--from", str(run), "--out", str(art), "--batch-size", "8", "--seq-len", "10",
             log=work / "export.log")  # fmt: skip
    return run / "checkpoint", art


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB, or NaN when it is gone."""
    values = {"VmRSS": float("nan"), "VmHWM": float("nan")}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in values:
                values[key] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (NaN when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server(work: Path, db: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "key").write_text(API_KEY)
    proc = _fedkeys("serve", "--db", db, "--port", str(port), "--api-key-file", str(work / "key"),
                    "--tick-seconds", "0.5", log=work / "server.log", wait=False)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.3)
    raise RuntimeError("coordinator did not start: " + (work / "server.log").read_text()[-2000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _round(admin: httpx.Client) -> dict[str, Any] | None:
    with contextlib.suppress(httpx.HTTPError, ValueError, IndexError):
        rounds = admin.get("/v1/admin/populations/keyboard/rounds").json()
        return rounds[0] if rounds else None
    return None


def _run_fleet(args: argparse.Namespace, work: Path, url: str, prepared: Path, server_pid: int) -> dict[str, Any]:
    emulate = _fedkeys(
        "devices", "emulate", "--coordinator", url, "--population", "keyboard", "--data", str(prepared),
        "--devices", str(args.devices), "--availability", "diurnal", "--speedup", str(args.speedup),
        "--start", str(START_UNIX), "--concurrency", str(args.concurrency), "--min-separation", "0",
        "--state-dir", str(work / "devices"), "--shared-cache", "--rounds", "1", "--api-key", API_KEY,
        "--no-progress", "--seed", str(args.seed), log=work / "emulate.log", wait=False,
    )  # fmt: skip
    started = time.monotonic()
    server_cpu0 = _cpu_seconds(server_pid)
    emulator_cpu = server_cpu = float("nan")
    loaded_rss = peak = float("nan")
    first = full = committed = None
    last: dict[str, Any] | None = None
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=10) as admin:
        while emulate.poll() is None:
            rss, hwm = _rss(emulate.pid)
            peak = hwm if np.isnan(peak) else max(peak, hwm)
            cpu = _cpu_seconds(emulate.pid)
            emulator_cpu = cpu if not np.isnan(cpu) else emulator_cpu
            server_cpu = _cpu_seconds(server_pid) - server_cpu0
            row = _round(admin)
            now = time.monotonic() - started
            if row is not None:
                last = row
                if first is None and row["assigned"] > 0:
                    first = now
                if full is None and row["assigned"] >= row["target"]:
                    full = now
                if committed is None and row["state"] == "committed":
                    committed = now
            if first is None:
                loaded_rss = rss  # the whole fleet in memory, nothing trained yet
            if time.monotonic() - started > args.timeout:
                _stop(emulate)
                raise RuntimeError(f"no commit within {args.timeout} s; last round {last}")
            time.sleep(0.5)
    wall = time.monotonic() - started
    log = (work / "emulate.log").read_text(errors="replace")
    if emulate.returncode != 0 or committed is None or first is None:
        raise RuntimeError(f"emulator exited {emulate.returncode}, round {last}: {log[-2000:]}")
    final = log.strip().splitlines()[-1]
    counts = {k: int(v) for k, v in re.findall(r"(check-ins|uploads|rejected|ineligible|errors) (\d+)", final)}
    round_seconds = committed - first
    active = wall - first  # the emulator's counters run from its first check-in to its exit
    return {
        "devices": args.devices, "goal": args.goal, "target": last["target"] if last else None,
        "speedup": args.speedup, "concurrency": args.concurrency,
        "db": args.db, "emulator_rss_loaded_mib": round(loaded_rss, 1), "emulator_rss_peak_mib": round(peak, 1),
        "setup_seconds": round(first, 1), "round_seconds": round(round_seconds, 1),
        "selection_seconds": round((full or committed) - first, 1), "wall_seconds": round(wall, 1),
        "round": {k: last[k] for k in ("assigned", "received", "aborted", "state")} if last else None,
        "emulator": counts, "checkins_per_second": round(counts.get("check-ins", 0) / active, 1),
        "uploads_per_second": round(counts.get("uploads", 0) / active, 1),
        "cpu_seconds": {"emulator": round(emulator_cpu, 1), "server": round(server_cpu, 1)}, "final_line": final,
    }  # fmt: skip


@contextlib.contextmanager
def _postgres_schema() -> Iterator[str]:
    """A fresh schema in the local test database (dropped afterwards); its URL."""
    import secrets

    import psycopg

    name = f"fk_bench_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _serve_and_run(
    args: argparse.Namespace, work: Path, db: str, prepared: Path, checkpoint: Path, plan: Path
) -> dict[str, Any]:
    server, url = _server(work, db)
    try:
        _fedkeys("admin", "create-task", "--url", url, "--api-key-file", str(work / "key"), "--population",
                 "keyboard", "--plan", str(plan), "--checkpoint", str(checkpoint), "--goal", str(args.goal),
                 "--over-selection", str(args.over_selection), "--selection-seconds", "3600",
                 "--report-seconds", "7200", "--codec", "quant8", "--max-rounds", "1", "--max-rows", "16",
                 log=work / "admin.log")  # fmt: skip
        return _run_fleet(args, work, url, prepared, server.pid)
    finally:
        _stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--goal", type=int, default=1_000, help="updates that commit the one round")
    parser.add_argument("--over-selection", type=float, default=1.3, help="target = goal * this")
    parser.add_argument("--messages", type=int, default=6, help="messages per synthetic user")
    parser.add_argument("--speedup", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--concurrency", type=int, default=8, help="emulator threads stepping devices")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="keep the work directory here instead of a temporary one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fedkeys-fleet-scale-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        users = int(args.devices * 1.03) + 10  # 1% validation and 1% test users are held out by prepare
        _corpus(work / "logs.jsonl", users, args.messages, args.seed)
        prepared = work / "prepared"
        _fedkeys("data", "prepare", "--corpus", f"jsonl:{work / 'logs.jsonl'}", "--out", str(prepared),
                 "--vocab-size", "500", "--min-words", "5", "--validation-fraction", "0.01", "--test-fraction", "0.01",
                 "--no-progress", log=work / "prepare.log")  # fmt: skip
        checkpoint, plan = _plan(work, prepared)
        with contextlib.ExitStack() as stack:
            if args.db == "postgresql":
                db = stack.enter_context(_postgres_schema())
            else:
                db = f"sqlite:///{work / 'coordinator.db'}"
            result = _serve_and_run(args, work, db, prepared, checkpoint, plan)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
