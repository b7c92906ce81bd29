"""A secure round's four phases (``/v1/sessions/{session_id}/secagg/{phase}``): post a message, fetch a download.

Bodies are ``secagg.encoding`` bytes; ``phase`` is one of ``wire.protocol.SECAGG_PHASES``.
A download that is not ready yet is refused with 409 ``phase_not_open``: the device polls.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from coordinator.errors import UpdateRejected
from coordinator.routes.deps import bearer, get_settings
from coordinator.secure_admission import admit_phase
from coordinator.secure_rounds import SecureRounds
from wire.protocol import Ack, ErrorBody

router = APIRouter(tags=["secure aggregation"])

_SESSION = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
_PHASE = Path(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
_REFUSALS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)}
_BINARY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _secure(request: Request) -> SecureRounds:
    secure: SecureRounds = request.app.state.secure
    return secure


@router.post(
    "/sessions/{session_id}/secagg/{phase}",
    response_model=Ack,
    responses=_REFUSALS,  # type: ignore[arg-type]
    openapi_extra=_BINARY,
)
async def post_phase(session_id: Annotated[str, _SESSION], phase: Annotated[str, _PHASE], request: Request) -> Ack:
    """The device's message of ``phase`` (advertise_keys, share_keys, masked_input, unmask).

    Authenticated before the body is read, which is then bounded by what the phase can hold (issue 14 point 6).
    """
    token = bearer(request)
    secure = _secure(request)
    bound = await run_in_threadpool(admit_phase, secure.db, session_id, token, phase)
    limit = min(get_settings(request).max_upload_bytes, bound)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpdateRejected("too_large", f"Content-Length {declared} > {limit} bytes for {phase}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading as soon as the bound is passed
        size += len(chunk)
        if size > limit:
            raise UpdateRejected("too_large", f"body exceeds {limit} bytes for {phase}")
        chunks.append(chunk)
    await run_in_threadpool(secure.submit, session_id, token, phase, b"".join(chunks))
    return Ack()


@router.get("/sessions/{session_id}/secagg/{phase}", responses=_REFUSALS)  # type: ignore[arg-type]
def get_phase(session_id: Annotated[str, _SESSION], phase: Annotated[str, _PHASE], request: Request) -> Response:
    """What the device needs for ``phase``: the neighbours' keys, its encrypted shares, or the unmask request."""
    body = _secure(request).fetch(session_id, bearer(request), phase)
    return Response(content=body, media_type="application/octet-stream")
