"""Real HTTP against ``fedkeys serve`` with 2 uvicorn workers on PostgreSQL: concurrent check-ins and uploads.

No over-assignment (exactly ``target`` of many concurrent check-ins are accepted) and no lost update
(the committed model is the exact weighted mean of the updates the server accepted, computed here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from coordinator_fixtures import (
    SHAPES,
    PostgresSchema,
    Server,
    admin_headers,
    checkin_body,
    create_task,
    initial_weights,
    postgres_available,
)

from wire.update import decode_weights, encode_update

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL at 127.0.0.1:5432 is not reachable")


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Server]:
    with PostgresSchema() as schema:
        server = Server(schema.url, tmp_path, workers=2)
        try:
            yield server.start()
        finally:
            server.stop()


def _delta(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng([42, i])
    return [(0.1 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def _upload(url: str, a: dict[str, Any], i: int, weight: float) -> int:
    blob = encode_update(
        _delta(i), codec=a["codec"], round=a["round"], base_version=a["model_version"], weight=weight, seed=a["seed"]
    )
    r = httpx.put(
        f"{url}/v1/sessions/{a['session_id']}/update",
        content=blob,
        headers={"Authorization": f"Bearer {a['upload_token']}"},
        timeout=60,
    )
    return r.status_code


def test_multiworker_postgres_no_over_assignment_and_no_lost_update(pg_server: Server) -> None:
    url = pg_server.url
    with httpx.Client(base_url=url, timeout=60) as client:
        create_task(client, goal_count=20, over_selection=1.5, selection_seconds=120, report_seconds=300)

    def checkin(_: int) -> dict[str, Any]:
        r = httpx.post(f"{url}/v1/populations/keyboard/checkin", json=checkin_body(httpx, base=url), timeout=60)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(checkin, range(80)))
    assigned = [a["assignment"] for a in answers if a["outcome"] == "accepted"]
    assert len(assigned) == 30  # target = ceil(20 * 1.5), never more under concurrency
    assert {a["reason"] for a in answers if a["outcome"] == "rejected"} == {"round_full"}
    assert len({a["session_id"] for a in assigned}) == 30

    weights = {a["session_id"]: float(1 + i % 7) for i, a in enumerate(assigned)}
    index = {a["session_id"]: i for i, a in enumerate(assigned)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda a: _upload(url, a, index[a["session_id"]], weights[a["session_id"]]), assigned))
    accepted = [a for a, code in zip(assigned, codes, strict=True) if code == 200]
    assert len(accepted) == 20  # the goal; the rest are refused as late
    assert sorted(set(codes)) == [200, 409]

    with httpx.Client(base_url=url, headers=admin_headers(), timeout=60) as admin:
        # each worker holds its partial sum in memory; the commit waits a tick or two for the other's sealed one
        deadline = time.monotonic() + 30
        status = admin.get("/v1/admin/populations/keyboard").json()
        while status["model_version"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            status = admin.get("/v1/admin/populations/keyboard").json()
        assert (status["model_version"], status["rounds_committed"]) == (1, 1)
        round0 = admin.get("/v1/admin/populations/keyboard/rounds").json()[-1]
        assert (round0["assigned"], round0["received"], round0["state"]) == (30, 20, "committed")
        got = decode_weights(admin.get("/v1/admin/populations/keyboard/models/1").content)
        metrics = httpx.get(f"{url}/metrics").text
    total = sum(weights[a["session_id"]] for a in accepted)
    for t, (w0, w1) in enumerate(zip(initial_weights(), got, strict=True)):
        mean = sum(weights[a["session_id"]] * _delta(index[a["session_id"]])[t].astype(np.float64) for a in accepted)
        np.testing.assert_allclose(w1, (w0.astype(np.float64) + mean / total).astype(np.float32), rtol=0, atol=1e-6)
    # both workers' counters are summed (prometheus multi-process mode)
    assert 'fedkeys_checkins_total{outcome="accepted",reason=""} 30.0' in metrics
    assert 'fedkeys_uploads_total{result="accepted"} 20.0' in metrics
