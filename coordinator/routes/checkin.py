"""``POST /v1/populations/{population}/enroll`` (once: a credential) and ``.../checkin`` (a device asks for work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

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


_CHECKIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CheckinRequest.model_json_schema()}},
    }
}


@router.post(
    "/populations/{population}/checkin",
    response_model=CheckinResponse,
    responses=_REFUSALS,  # type: ignore[arg-type]
    openapi_extra=_CHECKIN_BODY,
)
async def checkin(population: Annotated[str, Path(pattern=NAME_PATTERN)], request: Request) -> Response:
    """An assignment, or a rejection with the retry window the device must respect (pace steering).

    Needs the credential from ``enroll``: 401/403 with a reason when it is missing, forged or expired.
    The hot path of a large population, so it skips what costs more than the answer: ``async`` (a plain
    ``def`` route costs a thread hop; a check-in never blocks the loop, ``coordinator.checkin``), the body
    parsed and validated in one step by pydantic-core from the bytes (the same ``CheckinRequest`` model,
    as strict, about half FastAPI's body and dependency machinery), and the response serialized once
    (returning the model would have FastAPI dump, validate again and re-encode it; ``response_model`` and
    ``openapi_extra`` still document both).
    """
    try:
        req = CheckinRequest.model_validate_json(await request.body())
    except ValidationError as err:  # the same 422 as a FastAPI body parameter's (app's handler)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
    coordinator: Coordinator = request.app.state.coordinator
    answer = await coordinator.checkin(population, req)
    return Response(answer.model_dump_json(), media_type="application/json")
