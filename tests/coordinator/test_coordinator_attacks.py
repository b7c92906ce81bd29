"""Issue 14's attacks by a malicious device, each played over HTTP against the app (in-process, SQLite, fake clock).

Points 2 (self-declared weight), 5 (Sybil), 6 (secagg bodies read before authentication),
7 (report / abort / secagg without the token; session ids in logs) and 9 (control characters in
logs; a bad token costing a write). docs/threat-model.md lists what each attack now gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from coordinator_fixtures import API_KEY, CHECKIN, SHAPES, Clock, admin_headers, checkin_body, create_task, enroll
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coordinator import CoordinatorSettings, Database, create_app
from coordinator.credentials import issue
from secagg import client as sa_client
from secagg import encoding
from secagg.messages import RoundParams
from wire.update import encode_update

SECURE: dict[str, Any] = {"goal_count": 4, "over_selection": 1.5, "min_reports": 3, "secure_aggregation": True}
PHASES = ("advertise_keys", "share_keys", "masked_input", "unmask")
REPORT = {"status": "completed", "example_count": 10, "download_seconds": 1.0, "train_seconds": 2.0}


def _checkin(client: TestClient, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = client.post("/v1/populations/keyboard/checkin", json=checkin_body(client, **changes)).json()
    assert body["outcome"] == "accepted", body
    assignment: dict[str, Any] = body["assignment"]
    return assignment


def _auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _reason(response: Any) -> tuple[int, str]:
    return response.status_code, str(response.json()["detail"]["reason"])


def _update(a: dict[str, Any], weight: float) -> bytes:
    deltas = [np.full(s, 0.01, np.float32) for s in SHAPES]
    return encode_update(
        deltas, codec=a["codec"], round=a["round"], base_version=a["model_version"], weight=weight, seed=a["seed"]
    )


def _upload(client: TestClient, a: dict[str, Any], blob: bytes, token: str | None = "") -> Any:
    token = a["upload_token"] if token == "" else token
    return client.put(f"/v1/sessions/{a['session_id']}/update", content=blob, headers=_auth(token))


def _current(client: TestClient) -> dict[str, Any]:
    current: dict[str, Any] = client.get("/v1/admin/populations/keyboard", headers=admin_headers()).json()["current"]
    return current


@contextlib.contextmanager
def _app(tmp_path: Path, clock: Clock, **settings: Any) -> Iterator[TestClient]:
    s = CoordinatorSettings(db=f"sqlite:///{tmp_path / 'c.db'}", api_key=SecretStr(API_KEY), **settings)
    db = Database(s.db)
    db.create_schema()
    with TestClient(create_app(s, clock=clock, db=db, run_clock=False)) as client:
        yield client
    db.dispose()


# ---------------------------------------------------------------- point 2: the weight is checked against the check-in


def test_upload_weight_above_declared_examples_refused(client: TestClient) -> None:
    create_task(client, goal_count=2)  # seq_len 4, 1 local epoch, max_rows 8: the plan allows 32
    liar = _checkin(client, example_count=1)  # 1 example of at most 4 targets
    for weight in (10**6, 32.0, 5.0):
        assert _reason(_upload(client, liar, _update(liar, weight))) == (422, "bad_weight"), weight
    assert _upload(client, liar, _update(liar, 4.0)).status_code == 200
    precise = _checkin(client, example_count=1, token_count=3)  # a device may declare its tokens instead
    assert _reason(_upload(client, precise, _update(precise, 4.0))) == (422, "bad_weight")
    assert _upload(client, precise, _update(precise, 3.0)).status_code == 200
    committed = client.get("/v1/admin/populations/keyboard/rounds", headers=admin_headers()).json()[-1]
    assert (committed["state"], committed["weight_sum"]) == ("committed", 7.0)


def test_checkin_declaring_no_tokens_is_refused(client: TestClient) -> None:
    create_task(client)
    body = client.post("/v1/populations/keyboard/checkin", json=checkin_body(client, token_count=0)).json()
    assert (body["outcome"], body["reason"]) == ("rejected", "no_examples")


# ---------------------------------------------------------------- point 5: one credential, one slot


def test_one_credential_takes_at_most_one_slot_of_a_round(client: TestClient, clock: Clock) -> None:
    create_task(client, goal_count=2, over_selection=1.5)  # 3 slots
    body = CHECKIN | {"credential": enroll(client)}
    answers = []
    for _ in range(4):
        answers.append(client.post("/v1/populations/keyboard/checkin", json=body).json())
        clock.advance(10)  # past the per-credential rate limit: the round's unique key decides
    assert [(a["outcome"], a["reason"]) for a in answers] == [("accepted", None)] + [
        ("rejected", "already_assigned")
    ] * 3
    assert _current(client)["assigned"] == 1
    for _ in range(2):  # two other devices still get the remaining slots
        _checkin(client)
    assert _current(client)["assigned"] == 3


def test_checkin_rate_limited_per_credential_without_a_write(client: TestClient) -> None:
    create_task(client, goal_count=2, over_selection=1.5)
    body = CHECKIN | {"credential": enroll(client)}
    assert client.post("/v1/populations/keyboard/checkin", json=body).json()["outcome"] == "accepted"
    writes = _count_writes(client)
    again = client.post("/v1/populations/keyboard/checkin", json=body).json()
    assert (again["outcome"], again["reason"]) == ("rejected", "checkin_too_soon")
    assert again["retry_window"]["min_seconds"] >= 2.0
    assert writes() == 0


def test_checkin_refuses_forged_expired_and_foreign_credentials(client: TestClient, clock: Clock) -> None:
    create_task(client)
    create_task(client, population="other")
    good = enroll(client)
    version, payload, mac = good.split(".")
    forged_mac = f"{version}.{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}"
    other_key = issue(b"k" * 32, "keyboard", clock.now + 3600)[0]
    cases = [
        (None, 401, "missing_credential"),
        (forged_mac, 403, "bad_credential"),
        (other_key, 403, "bad_credential"),
        ("v1.bm90LWpzb24.c2ln", 403, "bad_credential"),
        (enroll(client, "other"), 403, "wrong_population"),
    ]
    writes = _count_writes(client)
    for credential, status, why in cases:
        r = client.post("/v1/populations/keyboard/checkin", json=CHECKIN | {"credential": credential})
        assert _reason(r) == (status, why), why
    assert writes() == 0
    clock.advance(30 * 86400 + 1)  # the default lifetime
    r = client.post("/v1/populations/keyboard/checkin", json=CHECKIN | {"credential": good})
    assert _reason(r) == (401, "credential_expired")


def test_enrollment_key_guards_enrollment(tmp_path: Path, clock: Clock) -> None:
    key_file = tmp_path / "enroll-key"
    key_file.write_text("attested-build-secret\n")
    with _app(tmp_path, clock, enroll_key_file=key_file) as client:
        create_task(client)
        url = "/v1/populations/keyboard/enroll"
        assert _reason(client.post(url, json={"client_version": "t"})) == (403, "bad_enroll_key")
        wrong = {"X-Enroll-Key": "guess"}
        assert _reason(client.post(url, json={"client_version": "t"}, headers=wrong)) == (403, "bad_enroll_key")
        right = {"X-Enroll-Key": "attested-build-secret"}
        assert client.post(url, json={"client_version": "t"}, headers=right).status_code == 200


def test_open_enrollment_rate_limited_per_address(tmp_path: Path, clock: Clock) -> None:
    with _app(tmp_path, clock, enroll_burst=2, enroll_per_minute=1.0) as client:
        create_task(client)
        url = "/v1/populations/keyboard/enroll"
        codes = [client.post(url, json={"client_version": "t"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        clock.advance(61)
        assert client.post(url, json={"client_version": "t"}).status_code == 200


# ---------------------------------------------------------------- point 6: authenticate, then read a bounded body


def _asgi_post(app: FastAPI, path: str, headers: dict[str, str], size: int, chunk: int = 1 << 16) -> tuple[int, int]:
    """POST ``size`` bytes in ``chunk``-byte messages straight to the ASGI app: (status, bytes the app pulled)."""
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= size:
            return {"type": "http.disconnect"}
        pulled += chunk
        return {"type": "http.request", "body": b"\0" * chunk, "more_body": pulled < size}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*raw, (b"content-type", b"application/octet-stream")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return status, pulled


def test_secagg_post_refuses_before_reading_a_50mb_body(client: TestClient) -> None:
    create_task(client, **SECURE)
    a = _checkin(client)
    app: FastAPI = client.app  # type: ignore[assignment]
    big = 50 * 2**20
    assert _asgi_post(app, "/v1/sessions/nosuchsession/secagg/advertise_keys", _auth("x"), big) == (404, 0)
    assert _asgi_post(app, f"/v1/sessions/{a['session_id']}/secagg/advertise_keys", {}, big) == (401, 0)
    assert _asgi_post(app, f"/v1/sessions/{a['session_id']}/secagg/advertise_keys", _auth("x"), big) == (403, 0)
    # an authorized session: the body is bounded by the phase's size (72 bytes), not by the 256 MiB limit
    status, pulled = _asgi_post(
        app, f"/v1/sessions/{a['session_id']}/secagg/advertise_keys", _auth(a["upload_token"]), big
    )
    assert (status, pulled) == (413, 1 << 16)
    declared = _auth(a["upload_token"]) | {"Content-Length": str(big)}
    assert _asgi_post(app, f"/v1/sessions/{a['session_id']}/secagg/masked_input", declared, big) == (413, 0)


# ---------------------------------------------------------------- point 7: report, abort and secagg need the token


def test_report_and_abort_without_the_token_leave_the_victim_alone(client: TestClient) -> None:
    create_task(client, goal_count=1, over_selection=1.0)
    victim = _checkin(client)
    sid = victim["session_id"]
    forged = REPORT | {"metrics": {"loss_after": 1e12}}
    writes = _count_writes(client)
    for token, status, why in ((None, 401, "missing_token"), ("wrong", 403, "bad_token")):
        assert _reason(client.post(f"/v1/sessions/{sid}/abort", json={"reason": "x"}, headers=_auth(token))) == (
            status,
            why,
        )
        assert _reason(client.post(f"/v1/sessions/{sid}/report", json=forged, headers=_auth(token))) == (status, why)
    assert writes() == 0
    current = _current(client)
    assert (current["aborted"], current["reports_completed"], current["metrics"]) == (0, 0, {})
    assert _upload(client, victim, _update(victim, 4.0)).status_code == 200  # still in its round
    ok = client.post(f"/v1/sessions/{sid}/report", json=REPORT, headers=_auth(victim["upload_token"]))
    assert ok.json() == {"ok": True}


@pytest.mark.parametrize("phase", PHASES)
def test_secagg_phases_need_the_sessions_token(client: TestClient, phase: str) -> None:
    create_task(client, **SECURE)
    victim = _checkin(client)
    url = f"/v1/sessions/{victim['session_id']}/secagg/{phase}"
    writes = _count_writes(client)
    for token, status, why in ((None, 401, "missing_token"), ("wrong", 403, "bad_token")):
        assert _reason(client.post(url, content=b"\0" * 72, headers=_auth(token))) == (status, why)
        if phase != "advertise_keys":  # the three downloads
            assert _reason(client.get(url, headers=_auth(token))) == (status, why)
    assert writes() == 0
    s = victim["secure"]
    params = RoundParams(victim["round"], s["round_seed"], s["devices"], s["length"], s["threshold"])
    _, advert = sa_client.advertise(params, s["device"])
    good = client.post(
        f"/v1/sessions/{victim['session_id']}/secagg/advertise_keys",
        content=encoding.encode_advert(advert),
        headers=_auth(victim["upload_token"]),
    )
    assert good.status_code == 200, good.text  # the victim's session is unaffected


def test_session_ids_stay_out_of_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    create_task(client, goal_count=1, over_selection=2.0)
    with caplog.at_level(logging.DEBUG):
        a, b = _checkin(client), _checkin(client)
        assert _upload(client, a, b"junk").status_code == 422
        assert _upload(client, a, _update(a, 4.0)).status_code == 200
        client.post(f"/v1/sessions/{a['session_id']}/report", json=REPORT, headers=_auth(a["upload_token"]))
        client.post(f"/v1/sessions/{b['session_id']}/abort", json={"reason": "x"}, headers=_auth(b["upload_token"]))
    server = [r for r in caplog.records if r.name.startswith("coordinator")]  # not the test client's httpx log
    assert {r.getMessage().split()[0] for r in server} >= {"assigned", "upload_rejected", "upload_accepted", "abort"}
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in server)
    for session in (a, b):
        assert session["session_id"] not in logged
        assert session["upload_token"] not in logged


# ---------------------------------------------------------------- point 9: control characters, writes on refusals


@pytest.mark.parametrize(
    "path, body",
    [
        ("abort", {"reason": "not_idle\n2026-01-01 INFO coordinator.service: upload_accepted"}),
        ("abort", {"reason": "x\r\x1b[2K"}),
        ("report", REPORT | {"metrics": {"loss\nupload_accepted round=0": 1.0}}),
        ("report", REPORT | {"metrics": {"loss\u2028x": 1.0}}),
    ],
    ids=["abort-newline", "abort-escape", "metric-newline", "metric-line-separator"],
)
def test_control_characters_refused_at_the_boundary(client: TestClient, path: str, body: dict[str, Any]) -> None:
    create_task(client)
    a = _checkin(client)
    r = client.post(f"/v1/sessions/{a['session_id']}/{path}", json=body, headers=_auth(a["upload_token"]))
    assert _reason(r) == (422, "invalid_request")


def test_unauthenticated_uploads_cost_no_write(client: TestClient) -> None:
    create_task(client)
    a = _checkin(client)
    blob = _update(a, 4.0)
    writes = _count_writes(client)
    assert _reason(_upload(client, a, blob, token="wrong")) == (403, "bad_token")
    assert _reason(_upload(client, a, blob, token=None)) == (401, "missing_token")
    r = client.put("/v1/sessions/nosuchsession/update", content=blob, headers=_auth("x"))
    assert _reason(r) == (404, "unknown_session")
    assert writes() == 0
    metrics = client.get("/metrics").text
    assert 'fedkeys_update_rejections_total{reason="bad_token"} 1.0' in metrics


def _count_writes(client: TestClient) -> Any:
    """Count the coordinator's write transactions from now on (a callable returning the count)."""
    db = client.app.state.coordinator.db  # type: ignore[attr-defined]
    original = db.write
    count = [0]

    @contextlib.contextmanager
    def counted() -> Iterator[Any]:
        count[0] += 1
        with original() as conn:
            yield conn

    db.write = counted
    return lambda: count[0]
