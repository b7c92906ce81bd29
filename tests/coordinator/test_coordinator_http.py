"""The coordinator over HTTP (in-process ASGI) on a SQLite file, with a fake clock."""

from __future__ import annotations

import gc
import gzip
from typing import Any

import numpy as np
import pytest
from coordinator_fixtures import (
    CHECKIN,
    SHAPES,
    Clock,
    admin_headers,
    checkin_body,
    create_task,
    initial_weights,
    sql_statements,
)
from fastapi.testclient import TestClient

from coordinator import CoordinatorSettings, Database, create_app
from coordinator.errors import CoordinatorRefusal
from coordinator.optimizers import AdamState, ServerOptimizerConfig, fedadam_step
from wire.update import decode_weights, encode_update


def checkin(client: TestClient, population: str = "keyboard", **changes: Any) -> dict[str, Any]:
    response = client.post(f"/v1/populations/{population}/checkin", json=checkin_body(client, population, **changes))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def deltas(seed: int, scale: float = 0.1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def upload(client: TestClient, a: dict[str, Any], blob: bytes, token: str | None = None) -> Any:
    token = a["upload_token"] if token is None else token
    return client.put(
        f"/v1/sessions/{a['session_id']}/update",
        content=blob,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )


def encode(a: dict[str, Any], d: list[np.ndarray], weight: float, **kw: Any) -> bytes:
    args = {"codec": a["codec"], "round": a["round"], "base_version": a["model_version"], "weight": weight}
    args |= {"seed": a["seed"], "rotation_seed": a["rotation_seed"]} | kw
    return encode_update(d, **args)


def model(client: TestClient, version: int) -> list[np.ndarray]:
    response = client.get(f"/v1/admin/populations/keyboard/models/{version}", headers=admin_headers())
    assert response.status_code == 200, response.text
    return decode_weights(response.content)


def status(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/v1/admin/populations/keyboard", headers=admin_headers()).json()
    return body


def bearer(a: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {a['upload_token']}"}


def reason(response: Any) -> str:
    return str(response.json()["detail"]["reason"])


def expected_fedavg(updates: list[tuple[list[np.ndarray], float]], lr: float = 1.0) -> list[np.ndarray]:
    total = sum(w for _, w in updates)
    return [
        (w0.astype(np.float64) + lr * sum(w * d[i].astype(np.float64) for d, w in updates) / total).astype(np.float32)
        for i, w0 in enumerate(initial_weights())
    ]


def test_admin_without_key_is_401(client: TestClient) -> None:
    assert client.get("/v1/admin/populations").status_code == 401
    assert client.get("/v1/admin/populations", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.put("/v1/admin/blobs", content=b"x").status_code == 401
    assert client.get("/v1/admin/populations", headers=admin_headers()).json() == []


def test_create_task_opens_round_zero(client: TestClient) -> None:
    s = create_task(client)
    assert (s["model_version"], s["current"]["round"], s["current"]["state"]) == (0, 0, "selecting")
    assert (s["current"]["goal"], s["current"]["target"]) == (2, 3)
    again = client.post("/v1/admin/tasks", json={**s["config"]}, headers=admin_headers())
    assert (again.status_code, reason(again)) == (409, "population_exists")


@pytest.mark.parametrize(
    ("change", "why"),
    [({"plan_sha256": "a" * 64}, "missing_blob"), ({"checkpoint_sha256": "b" * 64}, "missing_blob")],
)
def test_create_task_with_missing_blobs_refused(client: TestClient, change: dict[str, str], why: str) -> None:
    s = create_task(client)
    response = client.post(
        "/v1/admin/tasks", json=s["config"] | {"population": "other"} | change, headers=admin_headers()
    )
    assert (response.status_code, reason(response)) == (422, why)


def test_create_task_with_bad_plan_or_checkpoint_refused(client: TestClient) -> None:
    s = create_task(client)
    h = admin_headers()
    junk = client.put("/v1/admin/blobs", content=b"{not json", headers=h).json()["sha256"]
    r = client.post("/v1/admin/tasks", json=s["config"] | {"population": "p2", "plan_sha256": junk}, headers=h)
    assert (r.status_code, reason(r)) == (422, "bad_plan")
    from wire.update import encode_weights

    wrong = client.put("/v1/admin/blobs", content=encode_weights([np.zeros(3, np.float32)]), headers=h).json()
    r = client.post(
        "/v1/admin/tasks", json=s["config"] | {"population": "p3", "checkpoint_sha256": wrong["sha256"]}, headers=h
    )
    assert (r.status_code, reason(r)) == (422, "bad_checkpoint")
    r = client.post("/v1/admin/tasks", json=s["config"] | {"population": "p4", "checkpoint_sha256": junk}, headers=h)
    assert (r.status_code, reason(r)) == (422, "bad_checkpoint")


def test_checkin_assigns_up_to_target_then_rejects_with_retry_window(client: TestClient) -> None:
    create_task(client, seed=5)
    accepted = [checkin(client) for _ in range(3)]
    assert all(a["outcome"] == "accepted" for a in accepted)
    a = accepted[0]["assignment"]
    assert (a["round"], a["model_version"], a["codec"], a["task"]) == (0, 0, "float32", "train")
    assert a["hyperparameters"] == {  # batch size and sequence length are the plan's (its manifest), not sent
        "local_epochs": 1,
        "learning_rate": 0.5,
        "max_rows": 8,
        "data_seed": 5,  # the task seed: rows ordered as in simulation
    }
    assert len({x["assignment"]["session_id"] for x in accepted}) == 3
    assert len({x["assignment"]["seed"] for x in accepted}) == 3
    rejected = checkin(client)
    assert (rejected["outcome"], rejected["reason"]) == ("rejected", "round_full")
    # pace steering: the open round ends at its report deadline (600 s, no history yet); 4 check-ins in the
    # last 60 s = 0.0667/s against a need of target 3 per 60 s selection = 0.05/s -> spread over 60 * 1.333 s
    assert rejected["retry_window"] == {"min_seconds": 600.0, "max_seconds": 680.0}
    assert status(client)["current"]["assigned"] == 3


def test_checkin_rejections_without_work(client: TestClient) -> None:
    r = client.post("/v1/populations/nobody/enroll", json={"client_version": "t"})
    assert (r.status_code, reason(r)) == (404, "unknown_population")
    create_task(client)
    assert checkin(client, codecs=["quant2"])["reason"] == "codec"
    assert checkin(client, example_count=0)["reason"] == "no_examples"
    client.post("/v1/admin/populations/keyboard/pause", headers=admin_headers()).raise_for_status()
    assert checkin(client)["reason"] == "paused"
    client.post("/v1/admin/populations/keyboard/resume", headers=admin_headers()).raise_for_status()
    assert checkin(client)["outcome"] == "accepted"


@pytest.mark.parametrize(
    "body",
    [{}, CHECKIN | {"example_count": -1}, CHECKIN | {"codecs": []}, CHECKIN | {"surprise": 1}],
    ids=["empty", "negative", "no-codecs", "extra-field"],
)
def test_checkin_bad_body_is_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/populations/keyboard/checkin", json=body)
    assert (response.status_code, reason(response)) == (422, "invalid_request")


def test_blobs_are_gzip_content_addressed_and_cacheable(client: TestClient) -> None:
    create_task(client)
    a = checkin(client)["assignment"]
    r = client.get(a["checkpoint"]["url"], headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["etag"] == f'"{a["checkpoint"]["sha256"]}"'
    assert "immutable" in r.headers["cache-control"]
    for got, want in zip(decode_weights(r.content), initial_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    raw = client.get(a["plan"]["url"], headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert b"train.tflite" in raw.content
    again = client.get(a["plan"]["url"], headers={"If-None-Match": raw.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/v1/blobs/" + "c" * 64).status_code == 404
    assert client.get("/v1/blobs/not-a-hash").status_code == 422
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def test_round_commits_exact_weighted_mean_at_goal(client: TestClient) -> None:
    create_task(client)
    a1, a2, a3 = (checkin(client)["assignment"] for _ in range(3))
    updates = [(deltas(1), 3.0), (deltas(2), 5.0)]
    r1 = upload(client, a1, encode(a1, *updates[0]))
    assert r1.status_code == 200, r1.text
    assert r1.json() | {} == {
        "session_id": a1["session_id"],
        "round": 0,
        "accepted": True,
        "clipped": False,
        "received": 1,
        "goal": 2,
    }
    assert upload(client, a2, encode(a2, *updates[1])).json()["received"] == 2
    s = status(client)
    assert (s["model_version"], s["rounds_committed"], s["current"]["round"]) == (1, 1, 1)
    for got, want in zip(model(client, 1), expected_fedavg(updates), strict=True):
        np.testing.assert_array_equal(got, want)
    # the over-selected third device arrives late: refused, the model does not move
    late = upload(client, a3, encode(a3, deltas(3), 1.0))
    assert (late.status_code, reason(late)) == (409, "round_closed")
    assert status(client)["model_version"] == 1
    nxt = checkin(client)["assignment"]
    assert (nxt["round"], nxt["model_version"]) == (1, 1)
    models = client.get("/v1/admin/populations/keyboard/models", headers=admin_headers()).json()
    assert [m["version"] for m in models] == [0, 1]
    assert models[1]["sha256"] == nxt["checkpoint"]["sha256"]


def _nan_blob(a: dict[str, Any]) -> bytes:
    import json
    import struct

    from wire.update import CHECKSUM_BYTES, checksum

    blob = encode(a, deltas(9), 2.0)
    _m, _v, hlen = struct.unpack("<4sHI", blob[:10])
    header = json.loads(blob[10 : 10 + hlen])
    body = bytearray(blob[:-CHECKSUM_BYTES])
    start = 10 + hlen + header["tensors"][1]["offset"]
    body[start : start + 4] = struct.pack("<f", float("nan"))
    return bytes(body) + checksum(bytes(body))


def test_bad_uploads_refused_with_reason_and_never_change_the_model(client: TestClient) -> None:
    create_task(client, max_update_bytes=4096)
    a, good = checkin(client)["assignment"], checkin(client)["assignment"]
    cases = [
        (b"garbage" * 10, 422, "bad_magic"),
        (encode(a, deltas(1), 2.0)[:50], 422, "truncated"),
        (b"\0" * 5000, 413, "too_large"),
        (_nan_blob(a), 422, "not_finite"),
        (
            encode(a, [np.zeros((4, 3), np.float32), np.zeros(5, np.float32), np.zeros((2, 2), np.float32)], 2.0),
            422,
            "shape",
        ),
        (encode(a, deltas(1)[:2], 2.0), 422, "tensor_count"),
        (encode(a, deltas(1), 2.0, base_version=7), 422, "stale_base_version"),
        (encode(a, deltas(1), 2.0, round=5), 422, "wrong_round"),
        (encode(a, deltas(1), 2.0, codec="quant8"), 422, "codec"),
        (encode(a, deltas(1), 10**6), 422, "bad_weight"),
    ]
    for blob, code, why in cases:
        r = upload(client, a, blob)
        assert (r.status_code, reason(r)) == (code, why), why
    r = upload(client, a, encode(a, deltas(1), 2.0), token="wrong")
    assert (r.status_code, reason(r)) == (403, "bad_token")
    r = client.put(f"/v1/sessions/{a['session_id']}/update", content=encode(a, deltas(1), 2.0))
    assert (r.status_code, reason(r)) == (401, "missing_token")
    r = client.put("/v1/sessions/nosuchsession/update", content=b"x", headers={"Authorization": "Bearer x"})
    assert (r.status_code, reason(r)) == (404, "unknown_session")
    current = status(client)["current"]
    assert (current["received"], current["weight_sum"]) == (0, 0.0)
    # unauthenticated refusals (bad or missing token, unknown session) cost no write: process metrics only
    assert sum(current["rejections"].values()) == len(cases)
    # the session is still usable after refusals; a replay of a good upload is refused
    assert upload(client, a, encode(a, deltas(1), 2.0)).status_code == 200
    r = upload(client, a, encode(a, deltas(1), 2.0))
    assert (r.status_code, reason(r)) == (403, "token_used")
    assert status(client)["current"]["received"] == 1
    assert upload(client, good, encode(good, deltas(2), 6.0)).status_code == 200
    for got, want in zip(model(client, 1), expected_fedavg([(deltas(1), 2.0), (deltas(2), 6.0)]), strict=True):
        np.testing.assert_array_equal(got, want)


def test_norm_bound_reject_policy(client: TestClient) -> None:
    create_task(client, norm_bound=0.5, norm_policy="reject")
    a = checkin(client)["assignment"]
    r = upload(client, a, encode(a, deltas(1, scale=10.0), 2.0))
    assert (r.status_code, reason(r)) == (422, "norm_too_large")
    assert upload(client, a, encode(a, deltas(1, scale=0.01), 2.0)).json()["clipped"] is False


def test_norm_bound_clip_policy_clips(client: TestClient) -> None:
    create_task(client, norm_bound=0.5, norm_policy="clip")
    a = checkin(client)["assignment"]
    assert upload(client, a, encode(a, deltas(1, scale=10.0), 2.0)).json()["clipped"] is True


def test_deadline_commits_with_minimum_or_abandons(client: TestClient, clock: Clock) -> None:
    create_task(client, goal_count=3, min_reports=1, over_selection=1.0)
    a = checkin(client)["assignment"]
    assert upload(client, a, encode(a, deltas(1), 4.0)).status_code == 200
    clock.advance(601)
    client.app.state.coordinator.tick()  # type: ignore[attr-defined]
    s = status(client)
    assert (s["model_version"], s["rounds_committed"], s["current"]["round"]) == (1, 1, 1)
    for got, want in zip(model(client, 1), expected_fedavg([(deltas(1), 4.0)]), strict=True):
        np.testing.assert_array_equal(got, want)
    b = checkin(client)["assignment"]  # round 1 gets no update before its deadline
    clock.advance(601)
    late = upload(client, b, encode(b, deltas(2), 1.0))
    assert (late.status_code, reason(late)) in {(409, "deadline_passed"), (409, "round_closed")}
    client.app.state.coordinator.tick()  # type: ignore[attr-defined]
    s = status(client)
    assert (s["model_version"], s["rounds_abandoned"], s["current"]["round"]) == (1, 1, 2)


def test_upload_admitted_before_the_deadline_refused_when_its_body_ends_after(client: TestClient, clock: Clock) -> None:
    create_task(client, goal_count=3, over_selection=1.0)
    a = checkin(client)["assignment"]
    coordinator = client.app.state.coordinator  # type: ignore[attr-defined]
    admission = coordinator.admit_upload(a["session_id"], a["upload_token"])  # headers in time ...
    clock.advance(601)  # ... the body after the session's (the round's) report deadline
    with pytest.raises(CoordinatorRefusal) as refused:
        coordinator.receive_upload(admission, encode(a, deltas(1), 4.0))
    assert refused.value.reason in {"deadline_passed", "round_closed"}
    current = status(client)["current"]
    assert (current["received"], current["rejections"]) == (0, {refused.value.reason: 1})


def test_upload_admitted_twice_counts_once(client: TestClient) -> None:
    create_task(client, goal_count=3, over_selection=1.0)
    a = checkin(client)["assignment"]
    coordinator = client.app.state.coordinator  # type: ignore[attr-defined]
    first, second = (coordinator.admit_upload(a["session_id"], a["upload_token"]) for _ in range(2))
    blob = encode(a, deltas(1), 4.0)
    assert coordinator.receive_upload(first, blob).received == 1
    with pytest.raises(CoordinatorRefusal) as refused:  # a replay admitted before the first one was counted
        coordinator.receive_upload(second, blob)
    assert refused.value.reason == "token_used"
    assert status(client)["current"]["received"] == 1


def test_selection_deadline_without_minimum_abandons(client: TestClient, clock: Clock) -> None:
    create_task(client)
    checkin(client)  # 1 of min 2
    clock.advance(61)
    client.app.state.coordinator.tick()  # type: ignore[attr-defined]
    rounds = client.get("/v1/admin/populations/keyboard/rounds", headers=admin_headers()).json()
    assert [(r["round"], r["state"]) for r in rounds] == [(1, "selecting"), (0, "abandoned")]


def test_report_and_abort_aggregate_per_round(client: TestClient) -> None:
    create_task(client, goal_count=3, over_selection=1.0)
    a1, a2, a3 = (checkin(client)["assignment"] for _ in range(3))
    rep = {"status": "completed", "example_count": 10, "download_seconds": 1.0, "train_seconds": 2.0}
    for a, before, after in ((a1, 4.0, 3.0), (a2, 5.0, 3.5)):
        r = client.post(
            f"/v1/sessions/{a['session_id']}/report",
            json=rep | {"metrics": {"loss_before": before, "loss_after": after}},
            headers=bearer(a),
        )
        assert r.json() == {"ok": True}
    again = client.post(f"/v1/sessions/{a1['session_id']}/report", json=rep, headers=bearer(a1))
    assert (again.status_code, reason(again)) == (409, "already_reported")
    abort = client.post(f"/v1/sessions/{a3['session_id']}/abort", json={"reason": "not_idle"}, headers=bearer(a3))
    assert abort.status_code == 200
    r = upload(client, a3, encode(a3, deltas(3), 1.0))
    assert (r.status_code, reason(r)) == (409, "session_aborted")
    assert client.post("/v1/sessions/unknown/report", json=rep, headers=bearer(a1)).status_code == 404
    bad = client.post(f"/v1/sessions/{a2['session_id']}/report", json=rep | {"status": "meh"}, headers=bearer(a2))
    assert bad.status_code == 422
    cur = status(client)["current"]
    assert (cur["reports_completed"], cur["aborted"]) == (2, 1)
    assert cur["metrics"]["loss_before"] == pytest.approx(4.5)
    assert cur["metrics"]["loss_after"] == pytest.approx(3.25)
    assert cur["metrics"]["train_seconds"] == pytest.approx(2.0)


def test_fedadam_task_applies_adam_to_the_mean(client: TestClient) -> None:
    create_task(client, server_optimizer="fedadam", server_lr=0.01, goal_count=1, over_selection=1.0)
    a = checkin(client)["assignment"]
    upload(client, a, encode(a, deltas(4), 3.0)).raise_for_status()
    flat = np.concatenate([w.astype(np.float64).ravel() for w in initial_weights()])
    mean = np.concatenate([d.astype(np.float64).ravel() for d in deltas(4)])
    cfg = ServerOptimizerConfig(name="fedadam", learning_rate=0.01)
    want, _ = fedadam_step(flat, mean, AdamState.zeros(flat.size), cfg)
    got = np.concatenate([w.ravel() for w in model(client, 1)])
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_max_rounds_finishes_the_task(client: TestClient) -> None:
    create_task(client, goal_count=1, over_selection=1.0, max_rounds=1)
    a = checkin(client)["assignment"]
    upload(client, a, encode(a, deltas(4), 3.0)).raise_for_status()
    s = status(client)
    assert s["finished"] and s["model_version"] == 1
    assert checkin(client)["reason"] == "finished"


def test_ops_endpoints(client: TestClient) -> None:
    create_task(client, goal_count=1, over_selection=1.0)
    a = checkin(client)["assignment"]
    upload(client, a, b"junk")
    upload(client, a, encode(a, deltas(1), 1.0)).raise_for_status()
    client.post(
        f"/v1/sessions/{a['session_id']}/report",
        json={
            "status": "completed",
            "example_count": 3,
            "download_seconds": 0,
            "train_seconds": 0,
            "metrics": {"loss_before": 2.0, "loss_after": 1.5},
        },
        headers=bearer(a),
    )
    assert client.get("/healthz").json() == {"ok": True}
    text = client.get("/metrics").text
    assert 'fedkeys_checkins_total{outcome="accepted",reason=""} 1.0' in text
    assert 'fedkeys_update_rejections_total{reason="bad_magic"} 1.0' in text
    assert 'fedkeys_rounds_total{state="committed"} 1.0' in text
    page = client.get("/status")
    assert page.status_code == 200 and "keyboard" in page.text and "committed" in page.text
    assert "loss_after" in page.text
    assert client.get("/v1/admin/populations/keyboard/models/9", headers=admin_headers()).status_code == 404
    assert client.get("/v1/admin/populations/nope", headers=admin_headers()).status_code == 404


def test_dp_task_clips_weighs_uniformly_and_adds_noise(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import coordinator.lifecycle

    drawn: list[tuple[int, float]] = []

    def known_noise(size: int, std: float) -> np.ndarray:
        drawn.append((size, std))
        return np.linspace(-1.0, 1.0, size)

    monkeypatch.setattr(coordinator.lifecycle, "dp_noise", known_noise)
    create_task(client, goal_count=2, over_selection=1.0, norm_bound=0.5, dp_noise_multiplier=0.8, seed=11)
    a1, a2 = (checkin(client)["assignment"] for _ in range(2))
    big, small = deltas(1, scale=10.0), deltas(2, scale=0.001)
    upload(client, a1, encode(a1, big, 7.0)).raise_for_status()  # clipped to 0.5, weight ignored
    upload(client, a2, encode(a2, small, 30.0)).raise_for_status()
    flat = lambda ts: np.concatenate([t.astype(np.float64).ravel() for t in ts])  # noqa: E731
    norm = float(np.linalg.norm(flat(big)))
    clipped = flat([t * np.float32(0.5 / norm) for t in big])
    size = clipped.size
    assert drawn == [(size, 0.8 * 0.5)]  # std z * S over the model's P coordinates
    want = (flat(initial_weights()) + (clipped + flat(small) + np.linspace(-1.0, 1.0, size)) / 2).astype(np.float32)
    got = np.concatenate([w.ravel() for w in model(client, 1)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_retry_window_follows_recent_round_durations(client: TestClient, clock: Clock) -> None:
    create_task(client, goal_count=1, over_selection=1.0)
    a = checkin(client)["assignment"]
    clock.advance(10)
    upload(client, a, encode(a, deltas(1), 1.0)).raise_for_status()  # round 0 took 10 s; round 1 opens now
    assert checkin(client)["outcome"] == "accepted"  # round 1 is full (target 1)
    clock.advance(2)
    rejected = checkin(client)
    # expected end of round 1: opened + median(10 s) = 8 s from now; 3 check-ins / 60 s vs 1 per 60 s -> 3 windows
    assert rejected["retry_window"] == {"min_seconds": 8.0, "max_seconds": 8.0 + 180.0}


def test_checkin_round_full_rejection_sends_no_statement(client: TestClient, clock: Clock) -> None:
    create_task(client, goal_count=1, over_selection=1.0)
    assert checkin(client)["outcome"] == "accepted"  # the one slot; this check-in also shared the arrival count
    assert checkin(client)["reason"] == "round_full"  # the view still showed a free slot: the claim refused
    assert checkin(client)["reason"] == "round_full"  # the view, read again, moved the full round to reporting
    bodies = [checkin_body(client) for _ in range(6)]  # enrolled before counting: only check-ins are counted
    with sql_statements() as sent:
        for body in bodies[:5]:  # the same second: the view is fresh, no arrival share is due
            assert client.post("/v1/populations/keyboard/checkin", json=body).json()["reason"] == "round_full"
    assert sent == []  # answered from memory: no read, no write, no transaction
    clock.advance(1.0)
    with sql_statements() as sent:
        assert client.post("/v1/populations/keyboard/checkin", json=bodies[5]).json()["reason"] == "round_full"
    # a second later: the view is read again (tasks with their rounds; the open round's recent durations), and
    # this process shares its arrival counts (add, drop old seconds, sum the population's)
    assert sent == ["BEGIN", "SELECT", "SELECT", "BEGIN", "INSERT", "DELETE", "SELECT"]


def test_non_finite_json_numbers_refused(client: TestClient) -> None:
    create_task(client)
    a = checkin(client)["assignment"]
    body = '{"status": "completed", "example_count": 1, "download_seconds": 0, "train_seconds": Infinity}'
    r = client.post(
        f"/v1/sessions/{a['session_id']}/report", content=body, headers={"Content-Type": "application/json"} | bearer(a)
    )
    assert (r.status_code, reason(r)) == (422, "invalid_request")
    rep = {"status": "completed", "example_count": 1, "download_seconds": 0, "train_seconds": 0}
    r = client.post(
        f"/v1/sessions/{a['session_id']}/report", json=rep | {"metrics": {"loss": 1e300}}, headers=bearer(a)
    )
    assert r.status_code == 422
    r = client.get("/v1/admin/populations/keyboard/models/99999999999", headers=admin_headers())
    assert r.status_code == 422


def test_app_freezes_startup_objects_while_serving(settings: CoordinatorSettings, clock: Clock) -> None:
    db = Database(settings.db)
    db.create_schema()
    app = create_app(settings, clock=clock, db=db, run_clock=False)
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 0  # the collector's full passes skip what startup built
    assert gc.get_freeze_count() == 0
    db.dispose()
