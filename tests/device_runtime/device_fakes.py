"""Fakes for device tests: a coordinator over httpx.MockTransport, a numpy trainer, switchable conditions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from device_runtime.client import CoordinatorClient
from device_runtime.device import Device, DeviceConfig, litert_trainer
from device_runtime.eligibility import DeviceConditions, EligibilityPolicy
from device_runtime.example_store import StoredExample
from device_runtime.litert_model import EvalCounts
from device_runtime.timebase import SimClock, WallClock
from wire.manifest import PlanManifest, TensorSpec
from wire.protocol import Assignment, CheckinResponse, Hyperparameters, Resource, RetryWindow
from wire.update import encode_weights

GOOD = DeviceConditions(idle=True, charging=True, unmetered=True, battery=1.0)
BATCH, SEQ = 2, 4
SHAPES = ((3,), (2, 2))
INITIAL = [np.array([0.5, -1.0, 2.0], np.float32), np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)]
TRAIN_BYTES = b"fake train.tflite"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(**overrides: Any) -> PlanManifest:
    fields: dict[str, Any] = {
        "format_version": 1,
        "model_version": "test",
        "model_config": {"vocab_size": 20, "pad_id": 0, "bos_id": 2},
        "tensors": tuple(TensorSpec(f"w{i}", s, "float32") for i, s in enumerate(SHAPES)),
        "batch_size": BATCH,
        "seq_len": SEQ,
        "signatures": {"train": {"inputs": ["inputs", "targets", "learning_rate"], "outputs": ["loss"]}},
        "hyperparameters": {},
        "tokenizer_sha256": "0" * 64,
        "files": {"train.tflite": sha(TRAIN_BYTES)},
    }
    fields.update(overrides)
    return PlanManifest(**fields)


class FakeTrainer:
    """Weights move by lr * (non-pad targets in the batch) / 100 per step; loss falls with every step."""

    batch_size = BATCH
    seq_len = SEQ

    def __init__(self) -> None:
        self.weights = [np.zeros(s, np.float32) for s in SHAPES]
        self.steps = 0
        self.batches: list[tuple[np.ndarray, np.ndarray]] = []

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        self.weights = [np.array(w, np.float32) for w in weights]

    def train_step(self, inputs: object, targets: object, learning_rate: float) -> float:
        y = np.asarray(targets)
        self.batches.append((np.asarray(inputs).copy(), y.copy()))
        for w in self.weights:
            w += np.float32(learning_rate * np.count_nonzero(y) / 100.0)
        self.steps += 1
        return 1.0

    def evaluate(self, inputs: object, targets: object) -> EvalCounts:
        tokens = int(np.count_nonzero(np.asarray(targets)))
        return EvalCounts(tokens / (1.0 + self.steps), tokens, tokens * self.steps // 10, tokens)


@dataclasses.dataclass
class Switch:
    """Conditions that tests (or a trainer hook) can flip."""

    conditions: DeviceConditions = GOOD

    def __call__(self) -> DeviceConditions:
        return self.conditions


class FakeCoordinator:
    """Just enough of the protocol, with knobs for failure modes and a record of what devices sent."""

    def __init__(self, plan: bytes | None = None, checkpoint: bytes | None = None, train: bytes = TRAIN_BYTES) -> None:
        self.plan = plan if plan is not None else manifest().to_json().encode()
        self.checkpoint = checkpoint if checkpoint is not None else encode_weights(INITIAL)
        self.blobs = {sha(self.plan): self.plan, sha(train): train, sha(self.checkpoint): self.checkpoint}
        self.plan_sha = sha(self.plan)
        self.checkpoint_sha = sha(self.checkpoint)
        self.outcome = "accepted"
        self.checkin_status = 200
        self.upload_status = 200
        self.upload_reason = "round_closed"
        self.codec = "float32"
        self.hyper = Hyperparameters(local_epochs=2, learning_rate=0.5, max_rows=100, data_seed=5)
        self.retry = RetryWindow(min_seconds=100.0, max_seconds=200.0)
        self.tamper: dict[str, bytes] = {}  # sha -> bytes served instead
        self.checkins = 0
        self.enrollments = 0
        self.credentials: list[str] = []  # presented at each check-in
        self.checkin_bodies: list[dict[str, Any]] = []
        self.checkin_reason = "x"
        self.fetches: list[str] = []
        self.uploads: list[tuple[str, str, bytes]] = []
        self.reports: list[dict[str, Any]] = []
        self.aborts: list[tuple[str, str]] = []
        self.sessions = 0

    def assignment(self) -> Assignment:
        self.sessions += 1
        return Assignment(
            session_id=f"s{self.sessions}",
            population="p",
            task="train",
            round=7,
            model_version=3,
            plan=Resource(url=f"/v1/blobs/{self.plan_sha}", sha256=self.plan_sha),
            checkpoint=Resource(url=f"/v1/blobs/{self.checkpoint_sha}", sha256=self.checkpoint_sha),
            upload_token=f"token{self.sessions}",
            deadline_unix=2e9,
            hyperparameters=self.hyper,
            codec=self.codec,
            clip_norm=None,
            seed=11,
            rotation_seed=5,
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/enroll"):
            self.enrollments += 1
            return httpx.Response(200, json={"credential": f"cred{self.enrollments}", "expires_unix": 2e9})
        if path.endswith("/checkin"):
            self.checkins += 1
            self.checkin_bodies.append(json.loads(request.content))
            self.credentials.append(self.checkin_bodies[-1]["credential"])
            if self.checkin_status != 200:
                refusal = {"detail": {"reason": self.checkin_reason, "message": "down"}}
                return httpx.Response(self.checkin_status, json=refusal)
            if self.outcome == "accepted":
                body = CheckinResponse(outcome="accepted", assignment=self.assignment())
            else:
                body = CheckinResponse(outcome="rejected", retry_window=self.retry, reason="no_round")
            return httpx.Response(200, content=body.model_dump_json())
        if path.startswith("/v1/blobs/"):
            digest = path.rsplit("/", 1)[1]
            self.fetches.append(digest)
            data = self.tamper.get(digest, self.blobs.get(digest))
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404)
        if path.endswith("/update"):
            session = path.split("/")[3]
            if self.upload_status != 200:
                refusal = {"detail": {"reason": self.upload_reason, "message": "no"}}
                return httpx.Response(self.upload_status, json=refusal)
            self.uploads.append((session, request.headers["authorization"], request.content))
            return httpx.Response(
                200, json={"session_id": session, "round": 7, "clipped": False, "received": 1, "goal": 1}
            )
        if path.endswith("/report"):
            assert request.headers["authorization"].startswith("Bearer token"), "reports need the upload token"
            self.reports.append(json.loads(request.content))
            return httpx.Response(200, json={"ok": True})
        if path.endswith("/abort"):
            assert request.headers["authorization"].startswith("Bearer token"), "aborts need the upload token"
            self.aborts.append((path.split("/")[3], json.loads(request.content)["reason"]))
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(404)

    def client(self) -> CoordinatorClient:
        return CoordinatorClient.connect("http://coordinator", transport=httpx.MockTransport(self.handle))


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_device(
    tmp_path: Path,
    coordinator: FakeCoordinator,
    *,
    conditions: Switch | None = None,
    clock: Callable[[], float] | SimClock | None = None,
    trainer: FakeTrainer | None = None,
    examples: int = 5,
    real_trainer: bool = False,
    factory: Callable[[bytes, PlanManifest], Any] | None = None,
    **config: Any,
) -> Device:
    device_clock = clock if isinstance(clock, SimClock) else WallClock(clock or FakeClock())  # a phone: wall time
    the_trainer = trainer or FakeTrainer()
    if factory is None:
        factory = litert_trainer if real_trainer else lambda _bytes, _manifest: the_trainer
    cfg = DeviceConfig(
        population="p",
        client=1,
        directory=tmp_path / "device",
        eligibility=config.pop("eligibility", EligibilityPolicy(min_separation_seconds=0.0)),
        **config,
    )
    device = Device(
        cfg,
        coordinator.client(),
        conditions=conditions or Switch(),
        clock=device_clock,
        trainer_factory=factory,
    )
    now = device_clock.now()
    if examples and device.examples.total() == 0:
        device.add_examples([StoredExample(np.array([5, 6, 7, 8, 9][: 2 + i % 4]), now - i) for i in range(examples)])
    return device
