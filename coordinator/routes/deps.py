"""Dependencies shared by the routers (overridable in tests through ``app.dependency_overrides``)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from coordinator.admin import Admin
from coordinator.errors import CoordinatorRefusal
from coordinator.metrics import Metrics
from coordinator.service import Coordinator
from coordinator.settings import CoordinatorSettings
from wire.protocol import API_KEY_HEADER, CREDENTIAL_REASONS, SECAGG_REASONS, SESSION_REASONS, UPLOAD_REASONS

TASK_REASONS: dict[str, int] = {
    "unknown_population": 404,
    "unknown_version": 404,
    "population_exists": 409,
    "missing_blob": 422,
    "bad_plan": 422,
    "bad_checkpoint": 422,
    "bad_secure_config": 422,  # secure-aggregation parameters that cannot work (e.g. the ring would overflow)
}
_STATUS = {**UPLOAD_REASONS, **SESSION_REASONS, **TASK_REASONS, **SECAGG_REASONS, **CREDENTIAL_REASONS}

_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


async def get_coordinator(request: Request) -> Coordinator:
    """``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop on every check-in."""
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


def get_admin(request: Request) -> Admin:
    admin: Admin = request.app.state.admin
    return admin


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_settings(request: Request) -> CoordinatorSettings:
    settings: CoordinatorSettings = request.app.state.settings
    return settings


def require_admin(request: Request, key: str | None = Security(_api_key)) -> None:
    """401 unless the request carries the configured admin key (no key configured: admin is closed)."""
    expected = get_settings(request).api_key
    if key is None or expected is None or not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status_code=401, detail={"reason": "unauthorized", "message": f"a valid {API_KEY_HEADER} header is needed"}
        )


def status_of(err: CoordinatorRefusal) -> int:
    return _STATUS.get(err.reason, 400)


def refusal_body(err: CoordinatorRefusal) -> dict[str, dict[str, str]]:
    """The JSON body of a refused request (its status: ``status_of``)."""
    return {"detail": {"reason": err.reason, "message": err.message}}


def invalid_body(errors: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The JSON body of a 422 for a request that failed validation: where and why, of its first error."""
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return {"detail": {"reason": "invalid_request", "message": f"{where}: {first.get('msg', 'invalid request')}"}}


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
