"""``POST /v1/populations/{population}/enroll`` (once: a credential) and ``.../checkin`` (a device asks for work).

The check-in is served twice over: as a FastAPI route (the OpenAPI document, and the requests the raw path
leaves to FastAPI) and as a raw ASGI handler, :func:`serve_checkin`, that ``app.CoordinatorApp`` calls before
FastAPI's middleware and routing for every well-formed check-in path. Both parse the same model and answer
with the same bodies and status codes.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from coordinator.errors import CoordinatorRefusal
from coordinator.routes.deps import get_coordinator, invalid_body, refusal_body, status_of
from coordinator.service import Coordinator
from wire.protocol import (
    API_PREFIX,
    ENROLL_KEY_HEADER,
    NAME_PATTERN,
    CheckinRequest,
    CheckinResponse,
    EnrollRequest,
    EnrollResponse,
    ErrorBody,
)

router = APIRouter(tags=["devices"])
_REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 429)}


@router.post("/populations/{population}/enroll", response_model=EnrollResponse, responses=_REFUSALS)
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
    responses={**_REFUSALS, 413: {"model": ErrorBody}},
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
    try:  # the body is bounded by ``routes.bounds.bounded_receive``
        req = CheckinRequest.model_validate_json(await request.body())
    except ValidationError as err:  # the same 422 as a FastAPI body parameter's (app's handler)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
    coordinator: Coordinator = request.app.state.coordinator
    answer = await coordinator.checkin(population, req)
    return Response(answer.model_dump_json(), media_type="application/json")


_CHECKIN_PATH = re.compile(re.escape(API_PREFIX) + r"/populations/([^/]+)/checkin")
_NAME = re.compile(NAME_PATTERN)
_JSON_HEADERS = (b"content-type", b"application/json")


def checkin_population(scope: Scope) -> str | None:
    """The population of a check-in that :func:`serve_checkin` answers; None leaves the request to FastAPI
    (another path or method, a mounted app, a population name the route's path pattern refuses)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    match = _CHECKIN_PATH.fullmatch(scope["path"])
    if match is None or _NAME.fullmatch(match.group(1)) is None:
        return None
    return match.group(1)


async def serve_checkin(coordinator: Coordinator, population: str, receive: Receive, send: Send) -> None:
    """The check-in route as a bare ASGI handler: read the body, validate it, answer (``checkin`` above).

    What FastAPI's stack adds around the route (exception middleware, routing over every route, the path
    parameter's validation, dependency solving, a ``Request`` object) cost more than the check-in itself.
    ``receive`` is bounded (``routes.bounds.bounded_receive``): its 413 is answered as FastAPI would.
    An unexpected error propagates, and the server answers 500 as it would through FastAPI.
    """
    body = bytearray()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the device went away before its body arrived: nothing to answer
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
    except HTTPException as err:  # past the bound
        await _send(send, err.status_code, _json({"detail": err.detail}))
        return
    try:
        req = CheckinRequest.model_validate_json(body)
    except ValidationError as err:  # the route's 422 (the app's handler of RequestValidationError)
        await _send(send, 422, _json(invalid_body([{**e, "loc": ("body", *e["loc"])} for e in err.errors()])))
        return
    try:
        answer = await coordinator.checkin(population, req)
    except CoordinatorRefusal as err:
        await _send(send, status_of(err), _json(refusal_body(err)))
        return
    await _send(send, 200, answer.model_dump_json().encode())


def _json(content: Any) -> bytes:
    """An error body encoded as Starlette's ``JSONResponse`` encodes it."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), _JSON_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
