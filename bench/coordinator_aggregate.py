"""Streaming aggregation throughput of the coordinator for the ``small`` model at 8 bits.

Per accepted upload the coordinator decodes the update (unpack, dequantize,
inverse Hadamard rotation), validates it (shapes, finite, L2 norm) and adds it
to the round's float64 running sum; with the database in the loop it also loads
and stores that sum. Set against numpy's memory bandwidth on the same arrays:
adding one update has to read its float32 delta and read and write the float64
sum, 20 bytes per parameter, so ``bandwidth / (20 * params)`` updates/s is the
physical limit on this machine. All figures come from one run.

    .venv/bin/python bench/coordinator_aggregate.py [--preset small] [--codec quant8] [--updates 16]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from coordinator.aggregation import WeightedSum
from coordinator.validation import UpdateLimits, decode_and_validate
from wire.update import decode_update, encode_update

MB = 1e6


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


def numpy_bandwidth(params: int, repeats: int) -> float:
    """Bytes/s of ``total += delta`` on float64 (P,) arrays: reads 2 arrays, writes 1."""
    a = np.random.default_rng(0).normal(size=params)
    b = np.random.default_rng(1).normal(size=params)
    np.add(a, b, out=a)  # warm
    t = best_of(repeats * 5, lambda: np.add(a, b, out=a))
    return 3 * 8 * params / t


def db_path(shapes: list[tuple[int, ...]], blobs: list[bytes], url: str, codec: str) -> tuple[float, float]:
    """(seconds per upload, seconds per commit) through ``Coordinator.upload`` on a real database."""
    from coordinator import Admin, Coordinator, Database
    from coordinator.enrollment import Enrollment, EnrollmentConfig
    from coordinator.metrics import Metrics
    from coordinator.pace import PaceConfig
    from wire.manifest import PlanManifest, TensorSpec
    from wire.protocol import CheckinRequest, TaskCreate
    from wire.update import encode_weights

    db = Database(url)
    db.create_schema()
    admin = Admin(db, clock=time.time)
    train = b"bench plan"
    manifest = PlanManifest(
        format_version=1,
        model_version="bench",
        model_config={},
        batch_size=8,
        seq_len=20,
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(shapes)),
        signatures={"train": {"inputs": [], "outputs": []}},
        hyperparameters={},
        tokenizer_sha256="0" * 64,
        files={"train.tflite": hashlib.sha256(train).hexdigest()},
    )
    admin.put_blob(train)
    plan = admin.put_blob(manifest.to_json().encode()).sha256
    ckpt = admin.put_blob(encode_weights([np.zeros(s, np.float32) for s in shapes])).sha256
    goal = len(blobs)
    admin.create_task(
        TaskCreate.model_validate(
            {
                "population": "bench",
                "plan_sha256": plan,
                "checkpoint_sha256": ckpt,
                "goal_count": goal,
                "over_selection": 1.0,
                "codec": codec,
                "max_rows": 10_000,
            }
        )
    )
    enrollment = Enrollment(os.urandom(32), EnrollmentConfig(None, 10**6, 1e6, 86400.0, 0.0))
    coord = Coordinator(db, clock=time.time, metrics=Metrics(), pace=PaceConfig(), enrollment=enrollment)
    req = CheckinRequest(client_version="b", runtime="b", codecs=[codec], example_count=1, token_count=100)
    assignments = [
        coord.checkin(
            "bench", req.model_copy(update={"credential": enrollment.issue("bench", time.time())[0]})
        ).assignment
        for _ in range(goal)
    ]
    per_upload = []
    for a, blob in zip(assignments, blobs, strict=True):
        assert a is not None
        # re-encode for this session's round/base (both 0) - the blobs already are
        start = time.perf_counter()
        coord.upload(a.session_id, a.upload_token, blob)
        per_upload.append(time.perf_counter() - start)
    # the last upload reached the goal and committed: its time includes the commit
    commit = per_upload[-1] - float(np.median(per_upload[:-1]))
    db.drop_schema()
    db.dispose()
    return float(np.median(per_upload[:-1])), commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--codec", default="quant8")
    parser.add_argument("--updates", type=int, default=16, help="distinct updates added per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="'' to skip")
    args = parser.parse_args()

    shapes = model_shapes(args.preset, args.vocab_size)
    params = sum(math.prod(s) for s in shapes)
    rng = np.random.default_rng(0)
    deltas = [[(0.01 * rng.normal(size=s)).astype(np.float32) for s in shapes] for _ in range(args.updates)]
    t0 = time.perf_counter()
    blobs = [
        encode_update(d, codec=args.codec, round=0, base_version=0, weight=100.0, seed=i) for i, d in enumerate(deltas)
    ]
    encode_s = (time.perf_counter() - t0) / len(blobs)
    size = len(blobs[0])
    limits = UpdateLimits(
        round=0, base_version=0, codec=args.codec, shapes=tuple(shapes), max_weight=1e9, max_bytes=1 << 30
    )
    messages = [decode_update(b) for b in blobs]
    decoded = [m.decode_tensors() for m in messages]

    def full() -> None:
        acc = WeightedSum(shapes)
        for b in blobs:
            v = decode_and_validate(b, limits)
            acc.add(v.tensors, v.weight)

    def decode_only() -> None:
        for m in messages:
            m.decode_tensors()

    def add_only() -> None:
        acc = WeightedSum(shapes)
        for d in decoded:
            acc.add(d, 100.0)

    def persisted_add() -> None:  # what an upload does to the accumulator row, minus the database
        blob = WeightedSum(shapes).to_bytes()
        for d in decoded:
            acc = WeightedSum.from_bytes(shapes, blob, 0.0)
            acc.add(d, 100.0)
            blob = acc.to_bytes()

    n = len(blobs)
    rows: list[tuple[str, float]] = []
    for name, fn in (
        ("decode+validate+add (in memory)", full),
        ("  decode only (unpack, dequantize, unrotate)", decode_only),
        ("  add only (float64 running sum)", add_only),
        ("  add with sum to/from bytes", persisted_add),
    ):
        rows.append((name, best_of(args.repeats, fn) / n))
    commits: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        per, commits["SQLite"] = db_path(shapes, blobs, f"sqlite:///{Path(tmp) / 'b.db'}", args.codec)
        rows.append(("upload via Coordinator, SQLite file", per))
    if args.postgres:
        import secrets

        import psycopg

        schema = f"fk_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = args.postgres.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
            per, commits["PostgreSQL"] = db_path(shapes, blobs, url, args.codec)
            rows.append(("upload via Coordinator, PostgreSQL", per))
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    bandwidth = numpy_bandwidth(params, args.repeats)
    dram = numpy_bandwidth(32 * 2**20, 1)  # 256 MB arrays: past every cache, main memory
    limit_s = 20 * params / bandwidth
    rows.append(("numpy bound: 20 B/param at np.add bandwidth", limit_s))

    print(
        f"{args.preset} model, vocab {args.vocab_size}: {params:,} parameters ({4 * params / MB:.2f} MB float32); "
        f"{args.codec} update {size / MB:.3f} MB ({4 * params / size:.1f}x smaller); {os.cpu_count()} CPUs"
    )
    print(f"device-side encode (rotate + quantize + pack): {encode_s * 1e3:.1f} ms/update")
    print(
        f"numpy float64 add bandwidth: {bandwidth / 1e9:.2f} GB/s on the model's arrays "
        f"({8 * params / MB:.0f} MB each), {dram / 1e9:.2f} GB/s on 256 MB arrays"
    )
    print(f"{'step':<46}{'ms/update':>10}{'updates/s':>11}{'upload MB/s':>13}{'model MB/s':>12}{'vs bound':>10}")
    for name, sec in rows:
        print(
            f"{name:<46}{sec * 1e3:>10.2f}{1 / sec:>11.1f}{size / sec / MB:>13.1f}{4 * params / sec / MB:>12.1f}"
            f"{limit_s / sec:>10.3f}"
        )
    for backend, seconds in commits.items():
        print(f"commit on {backend} (mean, FedAvg step, new checkpoint blob): {seconds * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
