"""How many phones one machine can emulate, and the memory each costs.

Runs real ``device_runtime.Device`` objects (SQLite example store, LiteRT
training of the exported model, update encoding) against an in-process fake
coordinator that accepts every check-in, so only the device side is measured:

1. builds the training plan of a model preset (default ``small``: vocab 10,000,
   embedding 96, CIFG 256) the way ``fedkeys export tflite`` does;
2. creates ``--devices`` emulated phones, each holding ``--messages`` synthetic
   messages in the fleet's one SQLite file, and reports the resident memory and
   disk per idle device;
3. for each ``--concurrency`` K, runs the fleet for ``--seconds`` with K device
   steps at once and reports completed sessions (check-in, download from the
   cache, evaluate, train, evaluate, encode quant8, upload, report) per minute
   and the peak resident memory above the idle fleet per training device (a
   LiteRT interpreter exists only while its device trains).

    .venv/bin/python bench/device_fleet.py [--preset small] [--devices 300] [--concurrency 1 2 4] [--seconds 40]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import httpx
import numpy as np

from device_runtime import (
    CoordinatorClient,
    Device,
    DeviceConfig,
    EligibilityPolicy,
    Fleet,
    FleetConfig,
    LiteRTTrainer,
    SimClock,
    StoredExample,
    device_conditions,
    fleet_database,
)
from model import ModelConfig, build_model
from model.tflite_convert import convert_training_model
from model.tflite_training import KeyboardTrainingModule, TrainingShape
from wire.manifest import PlanManifest, TensorSpec
from wire.protocol import Assignment, CheckinResponse, Hyperparameters, Resource
from wire.update import decode_update, encode_weights


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _PeakRss:
    """Samples this process's resident memory every 20 ms while in use."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Coordinator:
    """Accepts every check-in; serves the plan, model and checkpoint; takes every upload."""

    def __init__(self) -> None:
        self.sessions = 0
        self.upload_bytes: list[int] = []
        self.lock = threading.Lock()

    def serve(self, plan: bytes, train: bytes, checkpoint: bytes, hyper: Hyperparameters) -> None:
        self.blobs = {hashlib.sha256(b).hexdigest(): b for b in (plan, train, checkpoint)}
        self.plan_sha = hashlib.sha256(plan).hexdigest()
        self.checkpoint_sha = hashlib.sha256(checkpoint).hexdigest()
        self.hyper = hyper

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/checkin"):
            with self.lock:
                self.sessions += 1
                n = self.sessions
            assignment = Assignment(
                session_id=f"s{n}", population="bench", task="train", round=n, model_version=0,
                plan=Resource(url=f"/v1/blobs/{self.plan_sha}", sha256=self.plan_sha),
                checkpoint=Resource(url=f"/v1/blobs/{self.checkpoint_sha}", sha256=self.checkpoint_sha),
                upload_token="t", deadline_unix=4e9, hyperparameters=self.hyper, codec="quant8", seed=n,
                rotation_seed=n,
            )  # fmt: skip
            body = CheckinResponse(outcome="accepted", assignment=assignment).model_dump_json()
            return httpx.Response(200, content=body)
        if path.startswith("/v1/blobs/"):
            return httpx.Response(200, content=self.blobs[path.rsplit("/", 1)[1]])
        if path.endswith("/update"):
            message = decode_update(request.content)
            with self.lock:
                self.upload_bytes.append(message.nbytes)
            ack = {"session_id": "s", "round": message.round, "clipped": False, "received": 1, "goal": 1}
            return httpx.Response(200, json=ack)
        if path.endswith("/enroll"):
            return httpx.Response(200, json={"credential": "bench", "expires_unix": 4e9})
        return httpx.Response(200, json={"ok": True})  # report, abort


def _plan(preset: str, vocab: int, batch: int, seq_len: int) -> tuple[bytes, bytes, bytes]:
    config = ModelConfig.from_preset(preset, vocab_size=vocab)
    weights = [w.astype(np.float32) for w in build_model(config, seed=0).get_weights()]
    train = convert_training_model(KeyboardTrainingModule(config, TrainingShape(batch, seq_len), weights))
    trainer = LiteRTTrainer(train)
    manifest = PlanManifest(
        format_version=1, model_version="bench", model_config=config.to_dict(),
        tensors=tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(trainer.weight_shapes)),
        batch_size=batch, seq_len=seq_len, signatures=trainer.signatures, hyperparameters={},
        tokenizer_sha256="0" * 64, files={"train.tflite": hashlib.sha256(train).hexdigest()},
    )  # fmt: skip
    return manifest.to_json().encode(), train, encode_weights(weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--messages", type=int, default=60, help="synthetic messages per device")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=40.0, help="real seconds per concurrency setting")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="fedkeys-fleet-bench-") as tmp:
        state = Path(tmp)
        coordinator = _Coordinator()
        client = CoordinatorClient.connect("http://bench", transport=httpx.MockTransport(coordinator.handle))
        gc.collect()
        base = _rss_mib()  # before the plan is built: the converter's garbage would hide the devices' memory
        clock = SimClock(1_700_000_000.0, 1000.0)
        fleet_config = FleetConfig(availability="always", slow_fraction=0.0, seed=args.seed)
        database = fleet_database(state)  # every device's rows in one file, as ``fedkeys devices emulate`` keeps them
        devices = []
        for i in range(args.devices):
            device_config = DeviceConfig(
                population="bench", client=i, directory=state / f"d{i}", cache_directory=state / "cache",
                eligibility=EligibilityPolicy(min_separation_seconds=0.0), seed=args.seed,
            )  # fmt: skip
            conditions = device_conditions(fleet_config, clock, i)
            device = Device(device_config, client, conditions=conditions, clock=clock, database=database)
            lengths = rng.integers(3, 16, size=args.messages)
            device.add_examples(
                [StoredExample(rng.integers(4, args.vocab, size=n), clock.now() - j) for j, n in enumerate(lengths)]
            )
            devices.append(device)
        gc.collect()
        idle = _rss_mib()
        disk = sum(p.stat().st_size for p in state.glob("devices.sqlite*")) / args.devices
        per_device = (idle - base) * 1024 / args.devices
        print(f"{args.devices} idle devices: +{idle - base:.1f} MiB resident ({per_device:.0f} KiB per device), "
              f"{disk / 1024:.0f} KiB SQLite per device")  # fmt: skip
        t0 = time.perf_counter()
        plan, train, checkpoint = _plan(args.preset, args.vocab, args.batch_size, args.seq_len)
        print(f"plan: {args.preset} (vocab {args.vocab}), train.tflite {len(train) / 2**20:.1f} MiB, "
              f"checkpoint {len(checkpoint) / 2**20:.1f} MiB, built in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        hyper = Hyperparameters(local_epochs=1, learning_rate=0.5, max_rows=256)
        coordinator.serve(plan, train, checkpoint, hyper)
        gc.collect()
        idle = _rss_mib()  # the reference for training: the fleet at rest, plan built
        print()
        print(f"{'concurrency':>11}{'sessions':>10}{'per min':>9}{'s/session':>11}{'peak MiB':>10}"
              f"{'above idle':>12}{'per trainer':>13}{'upload KiB':>12}")  # fmt: skip
        results = []
        for k in args.concurrency:
            fleet = Fleet(devices, clock, FleetConfig(availability="always", slow_fraction=0.0, concurrency=k))
            before = coordinator.sessions
            uploads_before = len(coordinator.upload_bytes)
            started = time.monotonic()
            with _PeakRss() as peak:
                fleet.run(lambda: time.monotonic() - started >= args.seconds, poll_seconds=0.05)  # noqa: B023
            elapsed = time.monotonic() - started
            done = len(coordinator.upload_bytes) - uploads_before
            upload = np.mean(coordinator.upload_bytes[uploads_before:]) / 1024 if done else float("nan")
            above = peak.peak - idle
            print(f"{k:>11}{done:>10}{done * 60 / elapsed:>9.1f}{k * elapsed / max(done, 1):>11.2f}"
                  f"{peak.peak:>10.0f}{above:>12.0f}{above / k:>13.0f}{upload:>12.0f}")  # fmt: skip
            results.append({"concurrency": k, "sessions": done, "checkins": coordinator.sessions - before,
                            "seconds": elapsed, "peak_rss_mib": peak.peak, "idle_rss_mib": idle})  # fmt: skip
        for device in devices:
            device.close()
        database.close()
        client.close()
    print()
    print(json.dumps({"base_rss_mib": base, "idle_rss_mib": idle, "devices": args.devices, "runs": results}))


if __name__ == "__main__":
    main()
