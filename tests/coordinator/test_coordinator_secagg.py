"""Secure rounds over HTTP: the four secagg phases, commit of the unmasked mean, abandonment below threshold."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from coordinator_fixtures import SHAPES, admin_headers, checkin_body, create_task, initial_weights
from fastapi.testclient import TestClient

from secagg import client as sa_client
from secagg import encoding
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.updates import delta_to_ring
from wire.update import decode_weights, encode_update

SECURE: dict[str, Any] = {
    "goal_count": 4,
    "over_selection": 1.5,
    "min_reports": 3,
    "secure_aggregation": True,
    "secagg_threshold": 3,
}


def _checkin(client: TestClient, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        body = client.post("/v1/populations/keyboard/checkin", json=checkin_body(client)).json()
        assert body["outcome"] == "accepted", body
        out.append(body["assignment"])
    return out


def _params(a: dict[str, Any]) -> RoundParams:
    s = a["secure"]
    return RoundParams(round=a["round"], round_seed=s["round_seed"], n=s["devices"], length=s["length"],
                       threshold=s["threshold"])  # fmt: skip


def _auth(a: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {a['upload_token']}"}


def _url(a: dict[str, Any], phase: str) -> str:
    return f"/v1/sessions/{a['session_id']}/secagg/{phase}"


def _post(client: TestClient, a: dict[str, Any], phase: str, body: bytes) -> Any:
    return client.post(_url(a, phase), content=body, headers=_auth(a) | {"Content-Type": "application/octet-stream"})


def _deltas(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng([3, i])
    return [(rng.normal(size=s) * 0.05).astype(np.float32) for s in SHAPES]


def _run_until_input(client: TestClient, assignments: list[dict[str, Any]]) -> dict[int, sa_client.ClientState]:
    states = {}
    for i, a in enumerate(assignments):
        states[i], advert = sa_client.advertise(_params(a), a["secure"]["device"])
        assert _post(client, a, "advertise_keys", encoding.encode_advert(advert)).status_code == 200
    for i, a in enumerate(assignments):
        response = client.get(_url(a, "share_keys"), headers=_auth(a))
        assert response.status_code == 200, response.text
        states[i], shares = sa_client.share_keys(_params(a), states[i], encoding.decode_adverts(response.content))
        assert _post(client, a, "share_keys", encoding.encode_shares(shares)).status_code == 200
    return states


def _weight(a: dict[str, Any], i: int) -> float:
    return float(a["secure"]["max_weight"]) * (i + 1) / 8  # devices of different token counts


def _send_input(
    client: TestClient, a: dict[str, Any], state: sa_client.ClientState, i: int, vector: np.ndarray | None = None
) -> sa_client.ClientState:
    response = client.get(_url(a, "masked_input"), headers=_auth(a))
    assert response.status_code == 200, response.text
    s = a["secure"]
    spec = RingSpec(bits=s["bits"], clip=s["clip"], max_weight=s["max_weight"])
    if vector is None:
        vector = delta_to_ring(_deltas(i), _weight(a, i), spec, np.random.default_rng(i))
    state, item = sa_client.masked_input(_params(a), state, encoding.decode_shares(response.content), vector)
    assert _post(client, a, "masked_input", encoding.encode_input(item)).status_code == 200
    return state


def _rounds(client: TestClient) -> list[dict[str, Any]]:
    rounds: list[dict[str, Any]] = client.get("/v1/admin/populations/keyboard/rounds", headers=admin_headers()).json()
    return rounds


def test_secure_round_commits_the_mean_of_survivors(client: TestClient, clock: Any) -> None:
    create_task(client, **SECURE)
    assignments = _checkin(client, 6)
    assert [a["secure"]["device"] for a in assignments] == list(range(6))
    states = _run_until_input(client, assignments)
    early = client.get(_url(assignments[0], "unmask"), headers=_auth(assignments[0]))
    assert early.status_code == 409 and early.json()["detail"]["reason"] == "phase_not_open"
    for i in range(4):  # devices 4 and 5 drop after sharing keys
        states[i] = _send_input(client, assignments[i], states[i], i)
    clock.advance(400)  # past the masked-input deadline
    client.app.state.coordinator.tick()  # type: ignore[attr-defined]
    for i in range(4):
        a = assignments[i]
        request = encoding.decode_request(client.get(_url(a, "unmask"), headers=_auth(a)).content)
        assert request.survivors == {0, 1, 2, 3} and request.dropped == {4, 5}
        response = sa_client.unmask(_params(a), states[i], request)
        assert _post(client, a, "unmask", encoding.encode_response(response)).status_code == 200
    latest = _rounds(client)
    committed = next(r for r in latest if r["round"] == 0)
    assert committed["state"] == "committed" and committed["received"] == 4
    new = decode_weights(client.get("/v1/admin/populations/keyboard/models/1", headers=admin_headers()).content)
    weights = [_weight(assignments[i], i) for i in range(4)]
    assert committed["weight_sum"] == pytest.approx(sum(weights), rel=1e-4)
    for k, old in enumerate(initial_weights()):
        mean = np.sum([w * _deltas(i)[k] for i, w in enumerate(weights)], axis=0) / sum(weights)  # token-weighted
        np.testing.assert_allclose(new[k], old + mean, atol=4 * 2.0 / 65535 / (sum(weights) / weights[-1]) + 1e-4)


def test_secure_round_below_threshold_abandoned(client: TestClient, clock: Any) -> None:
    create_task(client, **SECURE)
    assignments = _checkin(client, 6)
    states = _run_until_input(client, assignments)
    for i in range(2):  # fewer than the threshold of 3
        _send_input(client, assignments[i], states[i], i)
    clock.advance(400)
    client.app.state.coordinator.tick()  # type: ignore[attr-defined]
    first = next(r for r in _rounds(client) if r["round"] == 0)
    assert first["state"] == "abandoned" and first["committed_version"] is None
    a = assignments[0]
    refused = client.get(_url(a, "unmask"), headers=_auth(a))
    assert refused.status_code == 409 and refused.json()["detail"]["reason"] in ("round_abandoned", "round_closed")
    assert client.get("/v1/admin/populations/keyboard/models/1", headers=admin_headers()).status_code == 404


def test_secure_round_refuses_plain_uploads_and_bad_messages(client: TestClient) -> None:
    create_task(client, **SECURE)
    a, b = _checkin(client, 2)
    blob = encode_update(_deltas(0), codec="float32", round=a["round"], base_version=a["model_version"],
                         weight=1.0, seed=a["seed"])  # fmt: skip
    plain = client.put(f"/v1/sessions/{a['session_id']}/update", content=blob, headers=_auth(a))
    assert plain.status_code == 409 and plain.json()["detail"]["reason"] == "secure_round"
    _, advert_b = sa_client.advertise(_params(b), b["secure"]["device"])
    impersonating = _post(client, a, "advertise_keys", encoding.encode_advert(advert_b))
    assert impersonating.status_code == 422 and impersonating.json()["detail"]["reason"] == "secagg_invalid"
    assert _post(client, a, "advertise_keys", b"junk").status_code == 422
    assert _post(client, a, "nonsense", b"x").status_code == 404
    assert client.post(_url(a, "advertise_keys"), content=b"x").status_code == 401
    wrong_phase = _post(client, a, "unmask", b"\x00" * 12)
    assert wrong_phase.status_code in (409, 422)
    early = client.get(_url(a, "masked_input"), headers=_auth(a))
    assert early.status_code == 409 and early.json()["detail"]["reason"] == "phase_not_open"


def test_secure_round_commits_on_postgresql(settings: Any) -> None:
    """The same round on PostgreSQL (row locks, binary reads of the round record)."""
    from coordinator_fixtures import Clock, PostgresSchema, postgres_available

    from coordinator import Database, create_app

    if not postgres_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not available")
    with PostgresSchema() as schema:
        pg = settings.model_copy(update={"db": schema.url})
        db = Database(pg.db)
        db.create_schema()
        clock = Clock()
        try:
            with TestClient(create_app(pg, clock=clock, db=db, run_clock=False)) as client:
                test_secure_round_commits_the_mean_of_survivors(client, clock)
        finally:
            db.dispose()


def _unmask_all(client: TestClient, assignments: list[dict[str, Any]], states: dict[int, sa_client.ClientState],
                tamper: Any = None) -> None:  # fmt: skip
    for i, a in enumerate(assignments):
        request = encoding.decode_request(client.get(_url(a, "unmask"), headers=_auth(a)).content)
        response = sa_client.unmask(_params(a), states[i], request)
        if tamper is not None and i == 0:
            response = tamper(response)
        assert _post(client, a, "unmask", encoding.encode_response(response)).status_code == 200


def _abandoned_with(client: TestClient, a: dict[str, Any], reason: str) -> None:
    first = next(r for r in _rounds(client) if r["round"] == 0)
    assert first["state"] == "abandoned" and first["committed_version"] is None
    refused = client.get(_url(a, "unmask"), headers=_auth(a))
    assert refused.status_code == 409 and refused.json()["detail"]["reason"] == "round_abandoned"
    assert f"abandoned: {reason}:" in refused.json()["detail"]["message"]
    assert client.get("/v1/admin/populations/keyboard/models/1", headers=admin_headers()).status_code == 404


def test_secure_round_off_grid_input_abandoned_not_committed(client: TestClient) -> None:
    # issue 14 point 3: one device's levels off the grid used to wrap the ring and commit a mean of norm 4.1e5.
    create_task(client, **(SECURE | {"over_selection": 1.0}))
    assignments = _checkin(client, 4)
    states = _run_until_input(client, assignments)
    off_grid = np.full(assignments[0]["secure"]["length"], 1 << 31, np.uint32)
    for i, a in enumerate(assignments):
        states[i] = _send_input(client, a, states[i], i, off_grid if i == 3 else None)
    _unmask_all(client, assignments, states)
    _abandoned_with(client, assignments[0], "out_of_range")


def test_secure_round_share_off_by_one_abandoned_not_committed(client: TestClient) -> None:
    # issue 14 point 3: a Shamir share off by +1 used to unmask to a garbage sum without error.
    create_task(client, **(SECURE | {"over_selection": 1.0}))
    assignments = _checkin(client, 4)
    states = _run_until_input(client, assignments)
    for i, a in enumerate(assignments):
        states[i] = _send_input(client, a, states[i], i)

    def off_by_one(response: Any) -> Any:
        owner = min(response.self_shares)
        return dataclasses.replace(
            response, self_shares={**response.self_shares, owner: response.self_shares[owner] + 1}
        )

    _unmask_all(client, assignments, states, off_by_one)
    _abandoned_with(client, assignments[0], "bad_shares")
