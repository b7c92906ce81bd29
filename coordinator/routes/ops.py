"""Operations: ``/healthz``, ``/metrics`` (Prometheus) and the HTML status page ``/status``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST

from coordinator.admin import Admin
from coordinator.routes.deps import get_admin, get_coordinator, get_metrics
from coordinator.service import Coordinator
from coordinator.status_page import render_status

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(coordinator: Annotated[Coordinator, Depends(get_coordinator)]) -> JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        coordinator.db.ping()
    except Exception as err:  # any database failure means "not healthy", reported, not raised
        return JSONResponse({"ok": False, "error": type(err).__name__}, status_code=503)
    return JSONResponse({"ok": True})


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(get_metrics(request).render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/status", response_class=HTMLResponse)
def status(request: Request, admin: Annotated[Admin, Depends(get_admin)]) -> HTMLResponse:
    """Rounds, participation and device-reported metrics across versions (aggregates only, no secrets)."""
    data = [(s, admin.rounds(s.population, limit=200)) for s in admin.populations()]
    return HTMLResponse(render_status(request.app.state.templates, data))


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("/status")
