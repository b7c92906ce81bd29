"""``/status`` and ``/docs`` of a live coordinator in a real browser (headless Chromium).

A uvicorn server in a thread (loopback, fake clock) runs a committed round
with device reports and an abandoned one; Chromium must then find the five
SVG charts and the round table on ``/status``, and Swagger UI's rendered
operations on ``/docs`` (its script served locally: the machine has no CDN).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from coordinator_fixtures import API_KEY, SHAPES, Clock, checkin_body, create_task, free_port
from pydantic import SecretStr

from coordinator import CoordinatorSettings, Database, create_app
from wire.update import encode_update


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    settings = CoordinatorSettings(db=f"sqlite:///{tmp_path / 'coordinator.db'}", api_key=SecretStr(API_KEY))
    db = Database(settings.db)
    db.create_schema()
    clock = Clock(time.time())
    app = create_app(settings, clock=clock, db=db, run_clock=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=10) as client:
        _two_rounds(client, clock, app.state.coordinator)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()


def _two_rounds(client: httpx.Client, clock: Clock, coordinator: Any) -> None:
    """Round 0 commits two reported updates; round 1 gets one and is abandoned at its deadline."""
    create_task(client, goal_count=2, over_selection=1.5)
    for device in range(2):
        a = client.post("/v1/populations/keyboard/checkin", json=checkin_body(client)).json()["assignment"]
        report = {"status": "completed", "example_count": 10, "download_seconds": 1.0, "train_seconds": 2.0}
        metrics = {"loss_before": 8.5 - device, "loss_after": 8.0 - device, "upload_bytes": 3.123e6}
        _upload(client, a, device)
        bearer = {"Authorization": f"Bearer {a['upload_token']}"}
        sent = client.post(f"/v1/sessions/{a['session_id']}/report", json=report | {"metrics": metrics}, headers=bearer)
        sent.raise_for_status()
    a = client.post("/v1/populations/keyboard/checkin", json=checkin_body(client)).json()["assignment"]
    _upload(client, a, 9)
    clock.advance(700)
    coordinator.tick()


def _upload(client: httpx.Client, a: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    deltas = [(0.1 * rng.normal(size=s)).astype(np.float32) for s in SHAPES]
    blob = encode_update(
        deltas, codec=a["codec"], round=a["round"], base_version=a["model_version"], weight=10.0, seed=a["seed"]
    )
    headers = {"Authorization": f"Bearer {a['upload_token']}", "Content-Type": "application/octet-stream"}
    client.put(f"/v1/sessions/{a['session_id']}/update", content=blob, headers=headers).raise_for_status()


def test_status_page_in_a_browser_shows_five_charts_and_the_round_table(
    live: str, chromium: Any, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("FEDKEYS_SCREENSHOTS", tmp_path))  # set it to look at the pages yourself
    dom = chromium.dump_dom(f"{live}/status")
    assert dom.count('<svg class="chart"') == 5
    assert dom.count("<polyline") >= 5  # participation and loss lines drawn
    assert '<table class="rounds">' in dom and ">committed</span>" in dom and ">abandoned</span>" in dom
    assert "3.1 MB" in dom and "e+06" not in dom
    chromium.screenshot(f"{live}/status", shots / "status.png")
    assert "goal 2 not reached before the report deadline: only 1 device was assigned (1 received)" in dom


def test_docs_page_in_a_browser_renders_swagger_ui_offline(live: str, chromium: Any, tmp_path: Path) -> None:
    dom = chromium.dump_dom(f"{live}/docs", script_ms=20_000)
    assert "Unable to render this definition" not in dom  # Swagger UI 4 cannot read FastAPI's OpenAPI 3.1
    assert 'class="swagger-ui"' in dom  # the UI mounted (it stays an empty div when its script cannot load)
    assert "opblock-tag" in dom and "/v1/populations/{population}/checkin" in dom  # operations rendered
    shots = Path(os.environ.get("FEDKEYS_SCREENSHOTS", tmp_path))
    chromium.screenshot(f"{live}/docs", shots / "docs.png", script_ms=20_000)
