"""kill -9 of ``fedkeys serve`` in the middle of a round, then a restart on the same database.

Committed models are intact (byte for byte). The open round is lost, by design: its running sum
lived only in the killed processes' memory (``coordinator.partials``: no sum of fewer than the
round's updates is ever written to disk), so the restarted server abandons it once the dead
processes' lease has run out and opens the next round. Devices of the lost round are refused
(``token_used`` for an upload that landed, ``round_closed`` otherwise), and the next round's
commit is the exact weighted mean of its own updates on top of the intact model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
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

GOAL = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    with PostgresSchema() as schema:
        yield schema.url


def _delta(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng([7, i])
    return [(0.1 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def _upload(url: str, a: dict[str, Any], i: int) -> int | None:
    """The status code, or None when the server died before answering."""
    blob = encode_update(
        _delta(i),
        codec=a["codec"],
        round=a["round"],
        base_version=a["model_version"],
        weight=1.0 + i % 10,
        seed=a["seed"],
    )
    try:
        r = httpx.put(
            f"{url}/v1/sessions/{a['session_id']}/update",
            content=blob,
            headers={"Authorization": f"Bearer {a['upload_token']}"},
            timeout=30,
        )
    except httpx.HTTPError:
        return None
    return r.status_code


def _checkins(url: str, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        r = httpx.post(f"{url}/v1/populations/keyboard/checkin", json=checkin_body(httpx, base=url), timeout=30).json()
        assert r["outcome"] == "accepted", r
        out.append(r["assignment"])
    return out


def _mean_step(base: list[np.ndarray], ids: list[int]) -> list[np.ndarray]:
    total = sum(1.0 + i % 10 for i in ids)
    return [
        (w.astype(np.float64) + sum((1.0 + i % 10) * _delta(i)[t].astype(np.float64) for i in ids) / total).astype(
            np.float32
        )
        for t, w in enumerate(base)
    ]


def test_kill_9_mid_round_then_restart_resumes(db_url: str, tmp_path: Path) -> None:
    workers = 1 if db_url.startswith("sqlite") else 2
    server = Server(db_url, tmp_path, workers=workers)
    try:
        server.start()
        url = server.url
        with httpx.Client(base_url=url, timeout=30) as client:
            create_task(client, goal_count=GOAL, over_selection=1.0, selection_seconds=300, report_seconds=900)
        first = _checkins(url, GOAL)
        assert all(_upload(url, a, i) == 200 for i, a in enumerate(first))
        admin = httpx.Client(base_url=url, headers=admin_headers(), timeout=30)
        assert _wait(admin, lambda s: s["model_version"] == 1)["model_version"] == 1  # 2 workers: a tick or two
        v1 = admin.get("/v1/admin/populations/keyboard/models/1").content

        second = _checkins(url, GOAL)  # round 1
        ids = {a["session_id"]: 100 + i for i, a in enumerate(second)}
        for a in second[:3]:
            assert _upload(url, a, ids[a["session_id"]]) == 200
        admin.close()
        # the rest upload concurrently while the server is killed
        first_answer = threading.Event()

        def racing(a: dict[str, Any]) -> int | None:
            code = _upload(url, a, ids[a["session_id"]])
            first_answer.set()
            return code

        with ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(racing, a) for a in second[3:]]
            first_answer.wait(timeout=30)
            server.kill()
            codes = [f.result() for f in futures]
        assert server.proc.returncode == -9

        server.start()  # same database, same port
        admin = httpx.Client(base_url=url, headers=admin_headers(), timeout=30)
        assert admin.get("/v1/admin/populations/keyboard/models/1").content == v1  # committed model intact
        # the lost round is abandoned when the dead processes' partial rows pass their lease; round 2 opens
        status = _wait(admin, lambda s: s["current"] is not None and s["current"]["round"] == 2)
        assert (status["model_version"], status["rounds_committed"]) == (1, 1)
        states = {r["round"]: r["state"] for r in admin.get("/v1/admin/populations/keyboard/rounds").json()}
        assert states == {0: "committed", 1: "abandoned", 2: "selecting"}
        assert set(codes) <= {200, None}
        # devices of the lost round are refused: a landed upload as used, any other as closed
        for a, code in zip(second[3:], codes, strict=True):
            if code != 200:
                assert _upload(url, a, ids[a["session_id"]]) in (403, 409)
        assert _upload(url, second[0], ids[second[0]["session_id"]]) == 403
        third = _checkins(url, GOAL)  # round 2 commits from its own updates only
        ids3 = {a["session_id"]: 200 + i for i, a in enumerate(third)}
        assert all(_upload(url, a, ids3[a["session_id"]]) == 200 for a in third)
        status = _wait(admin, lambda s: s["model_version"] == 2)
        assert status["rounds_committed"] == 2
        v2 = decode_weights(admin.get("/v1/admin/populations/keyboard/models/2").content)
        assert admin.get("/v1/admin/populations/keyboard/models/1").content == v1
        admin.close()
        want = _mean_step(_mean_step(initial_weights(), list(range(GOAL))), sorted(ids3.values()))
        for got, expected in zip(v2, want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    finally:
        server.stop()


def _wait(admin: httpx.Client, done: Callable[[dict[str, Any]], bool], seconds: float = 60.0) -> dict[str, Any]:
    """The task's status once ``done`` holds (the round clock ticks every second; the lease is 10 s)."""
    deadline = time.monotonic() + seconds
    while True:
        status: dict[str, Any] = admin.get("/v1/admin/populations/keyboard").json()
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.25)
