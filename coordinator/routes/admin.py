"""The admin API (``/v1/admin/...``, header ``X-API-Key``): tasks, pause/resume, status, rounds, models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from coordinator.admin import Admin
from coordinator.routes.deps import get_admin, require_admin
from wire.protocol import NAME_PATTERN, BlobInfo, ErrorBody, ModelInfo, RoundInfo, TaskCreate, TaskStatus

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)

Population = Annotated[str, Path(pattern=NAME_PATTERN)]
AdminDep = Annotated[Admin, Depends(get_admin)]
_MAX_BLOB = 1 << 30
_MAX_INT = 2**31 - 1  # database INTEGER


@router.put(
    "/blobs",
    response_model=BlobInfo,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_blob(request: Request, admin: AdminDep) -> BlobInfo:
    """Store a plan file, manifest or checkpoint; returns its sha256 (idempotent)."""
    body = await request.body()
    if len(body) > _MAX_BLOB:
        raise HTTPException(413, detail={"reason": "too_large", "message": f"blob above {_MAX_BLOB} bytes"})
    return await run_in_threadpool(admin.put_blob, body)


@router.post("/tasks", response_model=TaskStatus, status_code=201, responses={409: {"model": ErrorBody}})
def create_task(req: TaskCreate, admin: AdminDep) -> TaskStatus:
    """Create a population and its task from an uploaded plan and checkpoint; opens round 0."""
    return admin.create_task(req)


@router.get("/populations", response_model=list[TaskStatus])
def populations(admin: AdminDep) -> list[TaskStatus]:
    return admin.populations()


@router.get("/populations/{population}", response_model=TaskStatus)
def status(population: Population, admin: AdminDep) -> TaskStatus:
    return admin.status(population)


@router.post("/populations/{population}/pause", response_model=TaskStatus)
def pause(population: Population, admin: AdminDep) -> TaskStatus:
    """Stop assigning devices; the open round runs to its end, no new round opens."""
    return admin.set_paused(population, True)


@router.post("/populations/{population}/resume", response_model=TaskStatus)
def resume(population: Population, admin: AdminDep) -> TaskStatus:
    return admin.set_paused(population, False)


@router.get("/populations/{population}/rounds", response_model=list[RoundInfo])
def rounds(
    population: Population,
    admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=0, le=_MAX_INT)] = None,
) -> list[RoundInfo]:
    """Round history, most recent first, with participation and device-reported metric means."""
    return admin.rounds(population, limit=limit, before=before)


@router.get("/populations/{population}/models", response_model=list[ModelInfo])
def models(population: Population, admin: AdminDep) -> list[ModelInfo]:
    return admin.models(population)


@router.get(
    "/populations/{population}/models/{version}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def model(population: Population, version: Annotated[int, Path(ge=0, le=_MAX_INT)], admin: AdminDep) -> Response:
    """A committed model's weights (``wire.update.encode_weights`` bytes)."""
    return Response(admin.model_blob(population, version), media_type="application/octet-stream")
