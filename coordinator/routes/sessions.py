"""A session's upload, report and abort (``/v1/sessions/{session_id}/...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from coordinator.routes.deps import bearer, get_coordinator, get_settings
from coordinator.service import Coordinator
from wire.protocol import AbortRequest, Ack, ErrorBody, ReportRequest, UploadResponse

router = APIRouter(tags=["devices"])

_SESSION = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
_REFUSALS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)}


@router.put(
    "/sessions/{session_id}/update",
    response_model=UploadResponse,
    responses=_REFUSALS,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(
    session_id: Annotated[str, _SESSION],
    request: Request,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> UploadResponse:
    """The device's encoded update (``wire.update``), authorized by its single-use upload token."""
    token = bearer(request)
    admission = await run_in_threadpool(coordinator.admit_upload, session_id, token)  # before any body
    limit = min(get_settings(request).max_upload_bytes, admission.max_bytes)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise await run_in_threadpool(coordinator.oversized, session_id, f"Content-Length {declared} > {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading as soon as the bound is passed
        size += len(chunk)
        if size > limit:
            raise await run_in_threadpool(coordinator.oversized, session_id, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return await run_in_threadpool(coordinator.receive_upload, admission, b"".join(chunks))


@router.post("/sessions/{session_id}/report", response_model=Ack, responses=_REFUSALS)  # type: ignore[arg-type]
def report(
    session_id: Annotated[str, _SESSION],
    req: ReportRequest,
    request: Request,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> Ack:
    """Status, durations and metrics (e.g. loss_before, loss_after) of the device's training (needs the token)."""
    coordinator.report(session_id, bearer(request), req)
    return Ack()


@router.post("/sessions/{session_id}/abort", response_model=Ack, responses=_REFUSALS)  # type: ignore[arg-type]
def abort(
    session_id: Annotated[str, _SESSION],
    req: AbortRequest,
    request: Request,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> Ack:
    """The device was interrupted (no longer idle, battery low, ...); its slot is not refilled this round.

    Needs the session's upload token: a session id alone cannot knock a device out of its round.
    """
    coordinator.abort(session_id, bearer(request), req)
    return Ack()
