"""Helpers of the coordinator tests: a tiny exported plan, a fake clock, task creation over any httpx client."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

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
    response = client.post("/v1/admin/tasks", json=body, headers=h)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


CHECKIN = {"client_version": "test-1", "runtime": "litert-2.3", "codecs": ["float32", "quant8"], "example_count": 10}
