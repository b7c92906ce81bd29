"""Aggregation throughput of the coordinator for the ``small`` model at 8 bits, against ``np.add``, in one run.

Per accepted upload the coordinator checks the container (size, XXH3-64
checksum, header), validates the update in the rotated domain (the norm from the levels'
moments, finiteness from the range) and adds ``weight * (lo + step * levels)``
to the round's in-memory rotated sum; it unrotates once per round, at commit
(Suresh et al. 2017; ``coordinator.aggregation``). The yardstick is what
``np.add`` achieves adding the same model's float32 update vectors (distinct
vectors, so caches do not flatter it): a float32 delta per update into the sum.

Measured, all in one run:

1. ``np.add`` updates/s (float32 and float64 sums of float32 vectors);
2. decode + validate + add updates/s with float64 and float32 sums, each as a
   ratio to (1), and its parts;
3. end to end over HTTP: ``fedkeys serve`` on loopback (SQLite, 1 worker;
   PostgreSQL, 2 workers), check-ins first, then many concurrent uploads; the
   updates/s from the first upload to the last answer, and the commit latency.

    .venv/bin/python bench/coordinator_aggregate.py [--preset small] [--codec quant8] [--uploads 300]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from coordinator.aggregation import RotatedSum
from coordinator.validation import UpdateLimits, decode_and_validate, validate_message
from wire.codec import round_rotation_seed
from wire.update import CHECKSUM_BYTES, checksum, decode_update, encode_update, encode_weights

MB = 1e6
_API_KEY = "bench-key"


def model_shapes(preset: str, vocab_size: int) -> list[tuple[int, ...]]:
    from model import ModelConfig, build_model  # TensorFlow, only to read the exact weight shapes

    return [tuple(int(d) for d in w.shape) for w in build_model(ModelConfig.from_preset(preset, vocab_size)).weights]


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Minimum wall time of ``repeats`` calls (the least disturbed by the other processes on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def in_memory(shapes: list[tuple[int, ...]], blobs: list[bytes], codec: str, repeats: int) -> list[tuple[str, float]]:
    """(step, seconds per update) of the numpy yardstick and of each part of the coordinator's path."""
    params = sum(math.prod(s) for s in shapes)
    rotation = round_rotation_seed(0, 0)
    limits = UpdateLimits(
        round=0, base_version=0, codec=codec, shapes=tuple(shapes), max_weight=1e9, max_bytes=1 << 30,
        rotation_seed=rotation,
    )  # fmt: skip
    messages = [decode_update(b) for b in blobs]
    vectors = [np.concatenate([t.ravel() for t in m.decode_tensors()]) for m in messages]  # float32 (P,)
    rotated = messages[0].rotation_seed is not None
    n = len(blobs)

    def np_add(dtype: type) -> Callable[[], None]:
        def run() -> None:
            acc: np.ndarray = np.zeros(params, dtype=dtype)
            for v in vectors:
                np.add(acc, v, out=acc)

        return run

    def full(dtype: type) -> Callable[[], None]:
        def run() -> None:
            acc = RotatedSum(shapes, rotated=rotated, dtype=dtype)
            for b in blobs:
                v = decode_and_validate(b, limits)
                acc.add(v.message, v.weight, v.scale)

        return run

    def add_only(dtype: type) -> Callable[[], None]:
        def run() -> None:
            acc = RotatedSum(shapes, rotated=rotated, dtype=dtype)
            for m in messages:
                acc.add(m, 100.0)

        return run

    def unrotate_once() -> None:
        acc = RotatedSum(shapes, rotated=rotated)
        acc.add(messages[0], 1.0)
        acc.unrotated(rotation if rotated else None)

    def container() -> None:
        for b in blobs:
            decode_update(b)

    def validate() -> None:
        for m in messages:
            validate_message(m, limits)

    def checksum_only() -> None:
        for b in blobs:
            checksum(memoryview(b)[:-CHECKSUM_BYTES])

    def sha256_only() -> None:
        for b in blobs:
            hashlib.sha256(b).digest()

    def old_path() -> None:  # before: every update dequantized and unrotated on its own
        for m in messages[:4]:
            m.decode_tensors()

    steps: list[tuple[str, Callable[[], object], int]] = [
        ("np.add, float32 sum += float32 vector", np_add(np.float32), n),
        ("np.add, float64 sum += float32 vector", np_add(np.float64), n),
        ("decode+validate+add, float64 sum", full(np.float64), n),
        ("decode+validate+add, float32 sum", full(np.float32), n),
        ("  container only (size, checksum, header)", container, n),
        ("    of which the XXH3-64 checksum of the body", checksum_only, n),
        ("    (sha256 of the body, format 2's checksum)", sha256_only, n),
        ("  validate only (rotated norm, finite)", validate, n),
        ("  add only, float64 sum", add_only(np.float64), n),
        ("  add only, float32 sum", add_only(np.float32), n),
        ("per round: unrotate the sum once", unrotate_once, 1),
    ]
    best = {name: math.inf for name, _, _ in steps}
    for _ in range(repeats):  # interleaved, so a burst of load on the machine hits every step alike
        for name, fn, count in steps:
            best[name] = min(best[name], best_of(1, fn) / count)
    rows = [(name, best[name]) for name, _, _ in steps]
    rows.insert(
        4,
        (
            "validate+add (the aggregation), float64 sum",
            best["  validate only (rotated norm, finite)"] + best["  add only, float64 sum"],
        ),
    )
    rows.insert(-1, ("  old path: decode_tensors (unrotate) per update", best_of(1, old_path) / 4))
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (the server and its workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _manifest(shapes: list[tuple[int, ...]], train: bytes) -> bytes:
    from wire.manifest import PlanManifest, TensorSpec

    manifest = PlanManifest(
        format_version=1, model_version="bench", model_config={}, batch_size=8, seq_len=20,
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(shapes)),
        signatures={"train": {"inputs": [], "outputs": []}}, hyperparameters={}, tokenizer_sha256="0" * 64,
        files={"train.tflite": hashlib.sha256(train).hexdigest()},
    )  # fmt: skip
    return manifest.to_json().encode()


def _serve(db_url: str, workers: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    (workdir / "key").write_text(_API_KEY)
    metrics = workdir / f"metrics-{port}"
    metrics.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDKEYS_")} | {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics)
    }
    cmd = [sys.executable, "-m", "fedkeys.cli", "serve", "--db", db_url, "--port", str(port)]
    cmd += ["--workers", str(workers), "--api-key-file", str(workdir / "key")]
    log = (workdir / f"serve-{port}.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"fedkeys serve did not start: {(workdir / f'serve-{port}.log').read_text()[-2000:]}")


def over_http(
    shapes: list[tuple[int, ...]], deltas: list[list[np.ndarray]], codec: str, uploads: int, db_url: str, workers: int
) -> tuple[float, float, int, float]:
    """(updates/s from first upload to last answer, commit seconds after it, accepted, server CPU s per upload).

    The server's CPU seconds per upload (all its processes, over the upload phase) is the figure other jobs on
    the machine disturb least.
    """
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _serve(db_url, workers, Path(tmp))
        try:
            h = {"X-API-Key": _API_KEY}
            with httpx.Client(base_url=url, headers=h, timeout=120) as admin:
                train = b"bench plan"
                put = lambda body: admin.put("/v1/admin/blobs", content=body).json()["sha256"]  # noqa: E731
                put(train)
                plan, ckpt = (
                    put(_manifest(shapes, train)),
                    put(encode_weights([np.zeros(s, np.float32) for s in shapes])),
                )
                task = {"population": "bench", "plan_sha256": plan, "checkpoint_sha256": ckpt, "goal_count": uploads,
                        "over_selection": 1.0, "codec": codec, "max_rows": 10_000, "selection_seconds": 600,
                        "report_seconds": 1200}  # fmt: skip
                admin.post("/v1/admin/tasks", json=task).raise_for_status()
                checkin = {"client_version": "b", "runtime": "b", "codecs": [codec], "example_count": 1}
                checkin["token_count"] = 1000  # the weight bound the device declares (weights below are 100)

                def enrolled() -> dict[str, object]:  # one enrolled device a check-in
                    cred = admin.post("/v1/populations/bench/enroll", json={"client_version": "b"}).json()
                    return checkin | {"credential": cred["credential"]}

                assignments = [
                    admin.post("/v1/populations/bench/checkin", json=enrolled()).json()["assignment"]
                    for _ in range(uploads)
                ]
            a0 = assignments[0]
            blobs = [
                encode_update(
                    d,
                    codec=codec,
                    round=a0["round"],
                    base_version=a0["model_version"],
                    weight=100.0,
                    seed=i,
                    rotation_seed=a0["rotation_seed"],
                )
                for i, d in enumerate(deltas)
            ]  # fmt: skip; the same round: every session rotates alike, so a few distinct blobs serve all of them
            clients = [httpx.Client(base_url=url, timeout=120) for _ in range(16)]

            def upload(i: int) -> int:
                a = assignments[i]
                r = clients[i % len(clients)].put(
                    f"/v1/sessions/{a['session_id']}/update", content=blobs[i % len(blobs)],
                    headers={"Authorization": f"Bearer {a['upload_token']}"},
                )  # fmt: skip
                return r.status_code

            cpu = _group_cpu_seconds(proc.pid)
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(clients)) as pool:
                codes = list(pool.map(upload, range(uploads)))
            elapsed = time.perf_counter() - start
            cpu = _group_cpu_seconds(proc.pid) - cpu
            with httpx.Client(base_url=url, headers=h, timeout=60) as admin:
                while admin.get("/v1/admin/populations/bench").json()["model_version"] < 1:
                    if time.perf_counter() - start - elapsed > 120:
                        break
                    time.sleep(0.05)
            commit = time.perf_counter() - start - elapsed
            for c in clients:
                c.close()
            return codes.count(200) / elapsed, commit, codes.count(200), cpu / uploads
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _postgres_url(base: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    schema = f"fk_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return base + f"?options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--codec", default="quant8")
    parser.add_argument("--updates", type=int, default=16, help="distinct updates added per timed pass")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved passes; the best of each step counts")
    parser.add_argument("--uploads", type=int, default=300, help="uploads of the end-to-end round (its goal)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="'' to skip")
    args = parser.parse_args()

    shapes = model_shapes(args.preset, args.vocab_size)
    params = sum(math.prod(s) for s in shapes)
    rng = np.random.default_rng(0)
    deltas = [[(0.01 * rng.normal(size=s)).astype(np.float32) for s in shapes] for _ in range(args.updates)]
    rotation = round_rotation_seed(0, 0)
    t0 = time.perf_counter()
    blobs = [
        encode_update(d, codec=args.codec, round=0, base_version=0, weight=100.0, seed=i, rotation_seed=rotation)
        for i, d in enumerate(deltas)
    ]
    encode_s = (time.perf_counter() - t0) / len(blobs)
    size = len(blobs[0])
    rows = in_memory(shapes, blobs, args.codec, args.repeats)
    base = rows[0][1]
    print(
        f"{args.preset} model, vocab {args.vocab_size}: {params:,} parameters ({4 * params / MB:.2f} MB float32); "
        f"{args.codec} update {size / MB:.3f} MB; {os.cpu_count()} CPUs; device-side encode {encode_s * 1e3:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'step':<52}{'ms/update':>10}{'updates/s':>11}{'vs np.add f32':>15}")
    for name, sec in rows:
        print(f"{name:<52}{sec * 1e3:>10.3f}{1 / sec:>11.1f}{base / sec:>15.2f}")
    backends = [("SQLite, 1 worker", None, 1)]
    if args.postgres:
        backends.append(("PostgreSQL, 2 workers", args.postgres, 2))
    for name, pg, workers in backends:
        with tempfile.TemporaryDirectory() as tmp:
            drop: Callable[[], None] = lambda: None  # noqa: E731
            url = f"sqlite:///{Path(tmp) / 'b.db'}"
            if pg is not None:
                url, drop = _postgres_url(pg)
            try:
                rate, commit, accepted, cpu = over_http(shapes, deltas, args.codec, args.uploads, url, workers)
            finally:
                drop()
        print(
            f"end to end over HTTP, {name}: {rate:.1f} updates/s ({accepted} accepted, 16 concurrent clients), "
            f"server CPU {cpu * 1e3:.2f} ms/upload, commit {commit * 1e3:.0f} ms after the last answer; "
            f"{rate * base:.2f}x np.add; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
