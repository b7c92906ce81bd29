"""``create_app``: the coordinator's FastAPI application, built from settings.

No module-level app: ``create_app(settings)`` in tests, and ``app_from_env``
(a uvicorn *factory*) in every worker process that ``fedkeys serve`` starts,
which builds the settings from the ``FEDKEYS_*`` environment the CLI exported.
A background task in each worker runs the round clock (``Coordinator.tick``)
every ``tick_seconds``; ticks are idempotent under the database's row locks, so
several workers ticking at once is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from coordinator.admin import Admin
from coordinator.credentials import load_key
from coordinator.db import Database
from coordinator.enrollment import Enrollment
from coordinator.errors import CoordinatorRefusal
from coordinator.logs import configure_logging, install_access_log_filter
from coordinator.metrics import Metrics
from coordinator.routes import admin_router, blobs_router, checkin_router, ops_router, secagg_router, sessions_router
from coordinator.routes.bounds import bounded_receive
from coordinator.routes.checkin import checkin_population, serve_checkin
from coordinator.routes.deps import invalid_body, refusal_body, status_of
from coordinator.routes.docs import mount_docs
from coordinator.secure_rounds import SecureRounds
from coordinator.service import Coordinator
from coordinator.settings import CoordinatorSettings
from coordinator.status_page import environment
from wire.protocol import API_PREFIX

logger = logging.getLogger(__name__)


class CoordinatorApp(FastAPI):
    """The coordinator's FastAPI app, with one exception: a device's check-in is answered before FastAPI's
    middleware, routing and dependency machinery (``routes.checkin.serve_checkin``).

    The check-in is the request a large population sends most (pace steering turns most devices away and
    they come back), and what FastAPI does around a route cost more than the check-in's own work. Its
    answers, refusals and 422s are the route's (the FastAPI route stays, for the OpenAPI document and for
    requests the raw path leaves to it, such as a population name that fails the path's pattern).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        receive = bounded_receive(scope, receive)  # a device's JSON message is read up to its bound
        population = checkin_population(scope)
        if population is None:
            await super().__call__(scope, receive, send)
        else:
            await serve_checkin(self.state.coordinator, population, receive, send)


def create_app(
    settings: CoordinatorSettings,
    *,
    clock: Callable[[], float] = time.time,
    db: Database | None = None,
    metrics: Metrics | None = None,
    run_clock: bool = True,
) -> FastAPI:
    """The app; ``db`` defaults to ``Database(settings.db)`` (schema created if missing)."""
    if db is None:
        db = Database(settings.db, pool_size=settings.db_pool_size)
        db.create_schema()
    metrics = metrics or Metrics()
    coordinator = Coordinator(
        db,
        clock=clock,
        metrics=metrics,
        pace=settings.pace,
        enrollment=Enrollment(load_key(db, settings.credential_key_file), settings.enrollment),
        workers=settings.workers,
        max_upload_bytes=settings.max_upload_bytes,
        checkin_view_seconds=settings.checkin_view_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick_forever(coordinator, settings.tick_seconds)) if run_clock else None
        # Everything built so far (app, routes, SQLAlchemy and pydantic caches) lives as long as the process:
        # frozen, the collector's full passes no longer walk it, and those passes were the check-in's latency
        # tail (bench/checkin_wrk.py, 64 connections: assign p99 113 -> 30-46 ms, reject 61 -> 18 ms).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # a process that serves several apps in turn (tests) lets the old ones go
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await run_in_threadpool(coordinator.close)  # writes the claims still queued

    app = CoordinatorApp(
        title="fedkeys coordinator",
        version="1",
        description="Federated learning coordinator for a keyboard's next-word model (Bonawitz et al. 2019).",
        lifespan=lifespan,
        docs_url=None,  # mount_docs serves both from local files, not a CDN
        redoc_url=None,
    )
    mount_docs(app)
    app.state.settings = settings
    app.state.coordinator = coordinator
    app.state.secure = SecureRounds(db, clock=clock, tick=coordinator.tick_task)
    app.state.admin = Admin(db, clock=clock)
    app.state.metrics = metrics
    app.state.templates = environment()
    for router in (checkin_router, blobs_router, sessions_router, secagg_router, admin_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(ops_router)

    @app.exception_handler(CoordinatorRefusal)
    async def _refusal(_request: Request, err: CoordinatorRefusal) -> JSONResponse:
        return JSONResponse(refusal_body(err), status_code=status_of(err))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(invalid_body(err.errors()), status_code=422)

    return app


async def _tick_forever(coordinator: Coordinator, seconds: float) -> None:
    while True:
        try:
            await run_in_threadpool(coordinator.tick)
        except Exception:  # a failed tick (database briefly away) must not stop the clock
            logger.exception("round clock tick failed")
        await asyncio.sleep(seconds)


def app_from_env() -> FastAPI:
    """The uvicorn factory used by ``fedkeys serve`` (settings from ``FEDKEYS_*``; schema made by the CLI)."""
    settings = CoordinatorSettings()
    configure_logging(json_lines=settings.log_json, level=settings.log_level)
    install_access_log_filter()  # session ids out of access-log URLs (fedkeys serve --access-log)
    db = Database(settings.db, pool_size=settings.db_pool_size)
    return create_app(settings, db=db)
