"""The check-in's raw ASGI path (``routes.checkin.serve_checkin``) answers exactly as its FastAPI route does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from coordinator_fixtures import CHECKIN, admin_headers, checkin_body, create_task
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from coordinator.routes.bounds import bounded_receive
from coordinator.routes.checkin import checkin_population
from wire.protocol import MAX_MESSAGE_BYTES


def _scope(path: str, method: str = "POST", **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": ""} | extra


def test_checkin_population_takes_only_wellformed_checkin_posts() -> None:
    assert checkin_population(_scope("/v1/populations/keyboard/checkin")) == "keyboard"
    assert checkin_population(_scope("/v1/populations/en.us-2/checkin")) == "en.us-2"
    assert checkin_population(_scope("/v1/populations/keyboard/checkin", method="GET")) is None
    assert checkin_population(_scope("/v1/populations/keyboard/enroll")) is None
    assert checkin_population(_scope("/v1/populations/Keyboard/checkin")) is None  # the path pattern refuses it
    assert checkin_population(_scope("/v1/populations/a/b/checkin")) is None
    assert checkin_population(_scope("/v1/populations/keyboard/checkin/")) is None
    assert checkin_population(_scope("/v1/populations/keyboard/checkin", root_path="/fk")) is None
    assert checkin_population({"type": "lifespan"}) is None


class _FastApiOnly:
    """The same app, every request through FastAPI's own stack (the check-in route, not the raw path)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self.app, scope, bounded_receive(scope, receive), send)  # as CoordinatorApp reads


def _answer(client: TestClient, population: str, body: Any) -> tuple[int, Any, str]:
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = client.post(f"/v1/populations/{population}/checkin", **kw)  # type: ignore[arg-type]
    return r.status_code, r.json(), r.headers["content-type"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        CHECKIN | {"example_count": -1},
        CHECKIN | {"codecs": []},
        CHECKIN | {"surprise": 1},
        CHECKIN | {"credential": "v1.forged.mac"},
        CHECKIN | {"credential": "not a credential!"},
        CHECKIN,  # no credential
        b"{not json",
        b"",
    ],
    ids=["empty", "negative", "no-codecs", "extra", "forged", "bad-pattern", "no-credential", "not-json", "no-body"],
)
def test_raw_checkin_refuses_as_the_route_does(client: TestClient, body: Any) -> None:
    create_task(client)
    route = TestClient(_FastApiOnly(client.app))  # type: ignore[arg-type]
    raw = _answer(client, "keyboard", body)
    assert raw[0] in (401, 403, 422)
    assert raw == _answer(route, "keyboard", body)


def test_raw_checkin_answers_as_the_route_does(client: TestClient) -> None:
    create_task(client)
    route = TestClient(_FastApiOnly(client.app))  # type: ignore[arg-type]

    def both(population: str, **changes: Any) -> None:  # a fresh device each (a credential checks in once)
        raw = _answer(client, population, checkin_body(client, **changes))
        assert raw == _answer(route, population, checkin_body(client, **changes))

    both("keyboard", codecs=["quant2"])  # refused: codec
    both("keyboard", example_count=0)  # refused: no examples
    both("nobody")  # the credential is for another population
    both("Keyboard")  # the path pattern refuses it: FastAPI answers either way
    client.post("/v1/admin/populations/keyboard/pause", headers=admin_headers()).raise_for_status()
    both("keyboard")  # refused: paused
    client.post("/v1/admin/populations/keyboard/resume", headers=admin_headers()).raise_for_status()
    for c in (client, route):
        status, answer, content_type = _answer(c, "keyboard", checkin_body(client))
        assert (status, answer["outcome"], content_type) == (200, "accepted", "application/json")
        assert set(answer) == {"outcome", "assignment", "retry_window", "reason"}
    assert route.get("/v1/populations/keyboard/checkin").status_code == 405
    assert client.get("/v1/populations/keyboard/checkin").status_code == 405


def test_checkin_body_over_the_bound_refused_413_on_both_paths(client: TestClient) -> None:
    create_task(client)
    route = TestClient(_FastApiOnly(client.app))  # type: ignore[arg-type]
    body = json.dumps(CHECKIN).encode()
    padded = body[:-1] + b" " * (MAX_MESSAGE_BYTES - len(body) + 1) + b"}"  # valid JSON, one byte over
    for c in (client, route):
        status, answer, _ = _answer(c, "keyboard", padded)
        assert (status, answer["detail"]["reason"]) == (413, "too_large")
        assert answer["detail"]["message"] == f"message body over {MAX_MESSAGE_BYTES} bytes"
    at_bound = body[:-1] + b" " * (MAX_MESSAGE_BYTES - len(body)) + b"}"
    assert len(at_bound) == MAX_MESSAGE_BYTES
    assert _answer(client, "keyboard", at_bound)[0] == 401  # read and judged: no credential


@pytest.mark.parametrize("path", ["/v1/populations/keyboard/enroll", "/v1/sessions/s1/report", "/v1/sessions/s1/abort"])
def test_device_message_over_the_bound_refused_413_before_any_check(client: TestClient, path: str) -> None:
    r = client.post(path, content=b"{" + b" " * MAX_MESSAGE_BYTES + b"}")
    assert (r.status_code, r.json()["detail"]["reason"]) == (413, "too_large")
    small = client.post(path, content=b"{}")
    assert small.status_code in (401, 403, 404, 422)  # read and judged as before
