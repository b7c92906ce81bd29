"""The device's HTTP client for the coordinator's protocol (paths and JSON models of ``wire.protocol``).

Every failure becomes a :class:`CoordinatorError` that says whether it is
transient (connection trouble, 5xx, 408, 429: retry with backoff) or permanent
(other 4xx: the request itself is refused; ``reason`` carries the
coordinator's refusal code, e.g. ``round_closed`` or ``token_used``), so the
scheduler can treat them as Google's client does (see ``scheduler``).
Responses that do not parse as the protocol's models are permanent errors too:
the device never crashes on what a server sends.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from device_runtime.scheduler import is_transient_status
from fedkeys_errors import FedkeysError
from wire.protocol import (
    API_PREFIX,
    ENROLL_KEY_HEADER,
    AbortRequest,
    Ack,
    CheckinRequest,
    CheckinResponse,
    EnrollRequest,
    EnrollResponse,
    ErrorBody,
    ReportRequest,
    UploadResponse,
)

logger = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)
DEFAULT_TIMEOUT_SECONDS = 60.0


class CoordinatorError(FedkeysError):
    """Talking to the coordinator failed; ``transient`` says whether retrying later may help."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.reason = reason


def _refusal_reason(response: httpx.Response) -> str | None:
    try:
        return ErrorBody.model_validate_json(response.content).detail.reason
    except ValidationError:
        return None


class CoordinatorClient:
    """One coordinator at ``base_url``; ``client`` may be shared by many devices (httpx is thread-safe)."""

    def __init__(self, client: httpx.Client) -> None:
        self._http = client

    @classmethod
    def connect(
        cls, base_url: str, *, transport: httpx.BaseTransport | None = None, max_connections: int = 64
    ) -> CoordinatorClient:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        return cls(httpx.Client(base_url=base_url, transport=transport, timeout=DEFAULT_TIMEOUT_SECONDS, limits=limits))

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as err:  # connect, read, write, timeouts, protocol errors
            raise CoordinatorError(f"{method} {url}: {type(err).__name__}: {err}", transient=True) from err
        if response.status_code >= 400:
            transient = is_transient_status(response.status_code)
            reason = None if transient else _refusal_reason(response)
            raise CoordinatorError(
                f"{method} {url}: HTTP {response.status_code}" + (f" ({reason})" if reason else ""),
                transient=transient,
                status=response.status_code,
                reason=reason,
            )
        return response

    def _json(self, model: type[_M], method: str, url: str, **kwargs: object) -> _M:
        response = self._request(method, url, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as err:
            raise CoordinatorError(
                f"{method} {url}: response is not a {model.__name__}: {err.error_count()} errors",
                transient=False,
                status=response.status_code,
                reason="bad_response",
            ) from err

    def enroll(self, population: str, request: EnrollRequest, enroll_key: str | None = None) -> EnrollResponse:
        """The device's credential (once; ``enroll_key`` stands in for a platform attestation verdict)."""
        headers = {"Content-Type": "application/json"} | ({ENROLL_KEY_HEADER: enroll_key} if enroll_key else {})
        return self._json(
            EnrollResponse,
            "POST",
            f"{API_PREFIX}/populations/{population}/enroll",
            content=request.model_dump_json(),
            headers=headers,
        )

    def checkin(self, population: str, request: CheckinRequest) -> CheckinResponse:
        return self._json(
            CheckinResponse,
            "POST",
            f"{API_PREFIX}/populations/{population}/checkin",
            content=request.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )

    def fetch(self, url: str) -> bytes:
        """A blob's bytes (gzip transfer encoding is undone by httpx); the caller verifies the hash."""
        return self._request("GET", url).content

    def upload(self, session_id: str, token: str, blob: bytes) -> UploadResponse:
        return self._json(
            UploadResponse,
            "PUT",
            f"{API_PREFIX}/sessions/{session_id}/update",
            content=blob,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )

    def secagg_post(self, session_id: str, token: str, phase: str, body: bytes) -> Ack:
        """A secure round's message of ``phase`` (``secagg.encoding`` bytes)."""
        return self._json(
            Ack,
            "POST",
            f"{API_PREFIX}/sessions/{session_id}/secagg/{phase}",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )

    def secagg_get(self, session_id: str, token: str, phase: str) -> bytes:
        """A secure round's download for ``phase``; 409 ``phase_not_open`` while it is too early."""
        url = f"{API_PREFIX}/sessions/{session_id}/secagg/{phase}"
        return self._request("GET", url, headers={"Authorization": f"Bearer {token}"}).content

    def report(self, session_id: str, token: str, request: ReportRequest) -> Ack:
        return self._json(
            Ack,
            "POST",
            f"{API_PREFIX}/sessions/{session_id}/report",
            content=request.model_dump_json(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def abort(self, session_id: str, token: str, reason: str) -> Ack:
        return self._json(
            Ack,
            "POST",
            f"{API_PREFIX}/sessions/{session_id}/abort",
            content=AbortRequest(reason=_printable(reason)[:200]).model_dump_json(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )


def _printable(text: str) -> str:
    """The coordinator takes printable ASCII only in free text (no control character reaches its logs)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text) or "unknown"
