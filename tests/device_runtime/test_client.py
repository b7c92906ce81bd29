"""device_runtime.client: every failure is a CoordinatorError that says transient or permanent."""

from __future__ import annotations

import httpx
import pytest

from device_runtime.client import CoordinatorClient, CoordinatorError
from wire.protocol import CheckinRequest, EnrollRequest, ReportRequest

REQUEST = CheckinRequest(client_version="t", runtime="litert", codecs=["quant8"], example_count=3)


def _client(handler: object) -> CoordinatorClient:
    return CoordinatorClient.connect("http://c", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def _error(handler: object) -> CoordinatorError:
    with pytest.raises(CoordinatorError) as info:
        _client(handler).checkin("pop", REQUEST)
    return info.value


def test_client_checkin_posts_the_request() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        return httpx.Response(200, json={"outcome": "rejected", "retry_window": {"min_seconds": 1, "max_seconds": 2}})

    response = _client(handler).checkin("pop", REQUEST)
    assert response.outcome == "rejected" and response.retry_window is not None
    assert seen == [("POST", "/v1/populations/pop/checkin", REQUEST.model_dump_json().encode())]


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_client_server_trouble_is_transient(status: int) -> None:
    err = _error(lambda r: httpx.Response(status, text="busy"))
    assert (err.transient, err.status) == (True, status)


def test_client_refusal_is_permanent_with_reason() -> None:
    err = _error(lambda r: httpx.Response(404, json={"detail": {"reason": "unknown_population", "message": "no"}}))
    assert (err.transient, err.status, err.reason) == (False, 404, "unknown_population")


def test_client_connection_refused_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    err = _error(handler)
    assert err.transient and err.status is None


def test_client_garbage_response_is_permanent() -> None:
    err = _error(lambda r: httpx.Response(200, content=b"<html>"))
    assert (err.transient, err.reason) == (False, "bad_response")


def test_client_upload_sends_token_and_bytes() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers["authorization"], request.content))
        return httpx.Response(200, json={"session_id": "s", "round": 1, "clipped": False, "received": 1, "goal": 2})

    assert _client(handler).upload("s", "tok", b"\x00\x01").received == 1
    assert seen == [("PUT", "/v1/sessions/s/update", "Bearer tok", b"\x00\x01")]


def test_client_enroll_sends_the_enroll_key() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("x-enroll-key")))
        return httpx.Response(200, json={"credential": "c", "expires_unix": 5.0})

    got = _client(handler).enroll("pop", EnrollRequest(client_version="t"), "secret")
    assert (got.credential, got.expires_unix) == ("c", 5.0)
    _client(handler).enroll("pop", EnrollRequest(client_version="t"))
    assert seen == [("/v1/populations/pop/enroll", "secret"), ("/v1/populations/pop/enroll", None)]


def test_client_report_and_abort_send_the_token_and_printable_reasons() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers["authorization"], request.content))
        return httpx.Response(200, json={"ok": True})

    client = _client(handler)
    client.report("s", "tok", ReportRequest(status="failed", example_count=0, download_seconds=0, train_seconds=0))
    client.abort("s", "tok", "battery\nlow")
    paths = [(path, auth) for path, auth, _ in seen]
    assert paths == [("/v1/sessions/s/report", "Bearer tok"), ("/v1/sessions/s/abort", "Bearer tok")]
    assert seen[1][2] == b'{"reason":"battery?low"}'
