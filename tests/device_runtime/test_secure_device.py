"""Devices run a secure round against the real coordinator app (in process): the round commits the mean delta."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from device_fakes import INITIAL, TRAIN_BYTES, FakeTrainer, Switch, manifest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coordinator import CoordinatorSettings, Database, create_app
from device_runtime.client import CoordinatorClient
from device_runtime.device import Device, DeviceConfig, StepOutcome
from device_runtime.eligibility import EligibilityPolicy
from device_runtime.example_store import StoredExample
from wire.manifest import PlanManifest
from wire.protocol import API_KEY_HEADER
from wire.update import decode_weights, encode_weights

KEY = "secure-device-key"
N = 3


def _constant(trainer: FakeTrainer) -> Callable[[bytes, PlanManifest], Any]:
    return lambda _bytes, _manifest: trainer


def _create_task(client: TestClient) -> None:
    h = {API_KEY_HEADER: KEY}
    plan = client.put("/v1/admin/blobs", content=manifest().to_json().encode(), headers=h).json()["sha256"]
    client.put("/v1/admin/blobs", content=TRAIN_BYTES, headers=h).raise_for_status()
    ckpt = client.put("/v1/admin/blobs", content=encode_weights(INITIAL), headers=h).json()["sha256"]
    body = {"population": "p", "plan_sha256": plan, "checkpoint_sha256": ckpt, "goal_count": N, "over_selection": 1.0,
            "codec": "float32", "selection_seconds": 30, "report_seconds": 300, "max_rows": 8, "learning_rate": 0.5,
            "secure_aggregation": True, "secagg_threshold": 2, "min_reports": 2, "secagg_clip": 10.0}  # fmt: skip
    response = client.post("/v1/admin/tasks", json=body, headers=h)
    assert response.status_code == 201, response.text


def test_secure_round_devices_over_http_commit_the_mean(tmp_path: Path) -> None:
    settings = CoordinatorSettings(db=f"sqlite:///{tmp_path / 'c.db'}", api_key=SecretStr(KEY))
    db = Database(settings.db)
    db.create_schema()
    app = create_app(settings, clock=time.time, db=db, run_clock=False)
    trainers = [FakeTrainer() for _ in range(N)]
    outcomes: list[StepOutcome] = []
    with TestClient(app) as http:
        _create_task(http)
        devices = []
        for i in range(N):
            config = DeviceConfig(population="p", client=i, directory=tmp_path / f"d{i}",
                                  eligibility=EligibilityPolicy(min_separation_seconds=0.0))  # fmt: skip
            device = Device(config, CoordinatorClient(http), conditions=Switch(),
                            trainer_factory=_constant(trainers[i]))  # fmt: skip
            now = time.time()
            device.add_examples([StoredExample(np.array([5, 6, 7, 8, 9][: 2 + k % 4]), now - k) for k in range(5)])
            devices.append(device)
        threads = [threading.Thread(target=lambda d=d: outcomes.append(d.step())) for d in devices]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert [o.kind for o in outcomes] == ["uploaded"] * N, outcomes
        rounds = http.get("/v1/admin/populations/p/rounds", headers={API_KEY_HEADER: KEY}).json()
        first = next(r for r in rounds if r["round"] == 0)
        assert first["state"] == "committed" and first["received"] == N
        new = decode_weights(http.get("/v1/admin/populations/p/models/1", headers={API_KEY_HEADER: KEY}).content)
    for d in devices:
        d.close()
    db.dispose()
    trained = trainers[0].get_weights()  # every device trained the same rows from the same weights
    for k, old in enumerate(INITIAL):
        np.testing.assert_allclose(new[k], trained[k], atol=4 * 20.0 / 65535)  # old + mean delta
        assert not np.allclose(new[k], old)
