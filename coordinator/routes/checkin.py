"""``POST /v1/populations/{population}/enroll`` (once: a credential) and ``.../checkin`` (a device asks for work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from coordinator.routes.deps import get_coordinator
from coordinator.service import Coordinator
from wire.protocol import (
    ENROLL_KEY_HEADER,
    NAME_PATTERN,
    CheckinRequest,
    CheckinResponse,
    EnrollRequest,
    EnrollResponse,
    ErrorBody,
)

router = APIRouter(tags=["devices"])
_REFUSALS = {code: {"model": ErrorBody} for code in (401, 403, 404, 429)}


@router.post("/populations/{population}/enroll", response_model=EnrollResponse, responses=_REFUSALS)  # type: ignore[arg-type]
def enroll(
    population: Annotated[str, Path(pattern=NAME_PATTERN)],
    _req: EnrollRequest,
    request: Request,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> EnrollResponse:
    """The device's credential, once (a stand-in for platform attestation: docs/threat-model.md)."""
    address = request.client.host if request.client is not None else ""
    return coordinator.enroll(population, request.headers.get(ENROLL_KEY_HEADER), address)


@router.post("/populations/{population}/checkin", response_model=CheckinResponse, responses=_REFUSALS)  # type: ignore[arg-type]
async def checkin(
    population: Annotated[str, Path(pattern=NAME_PATTERN)],
    req: CheckinRequest,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> Response:
    """An assignment, or a rejection with the retry window the device must respect (pace steering).

    Needs the credential from ``enroll``: 401/403 with a reason when it is missing, forged or expired.
    ``async``: a check-in never blocks the event loop (``coordinator.checkin``), and a plain ``def`` route
    would cost a thread hop each. The response is serialized once here: returning the model would have
    FastAPI dump, validate again and re-encode it (``response_model`` still documents it).
    """
    answer = await coordinator.checkin(population, req)
    return Response(answer.model_dump_json(), media_type="application/json")
