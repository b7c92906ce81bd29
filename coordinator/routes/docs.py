"""``/docs`` (Swagger UI) and ``/redoc`` served from local files, so they work without internet.

FastAPI's default pages load their scripts and CSS from a CDN, which leaves
``/docs`` blank on an air-gapped coordinator. This is FastAPI's documented
self-hosting recipe (``docs_url=None`` and ``redoc_url=None``, then
``get_swagger_ui_html`` / ``get_redoc_html`` with local URLs) over the files
that the ``fastapi-offline`` package ships (Swagger UI 5, which reads the
OpenAPI 3.1 that FastAPI writes; Swagger UI 4 refuses it).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/static/api-docs"


def mount_docs(app: FastAPI, path: str = "/docs", redoc_path: str = "/redoc") -> None:
    """Serve Swagger UI at ``path``, ReDoc at ``redoc_path`` and their files under :data:`ASSETS`."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="api-docs")
    redirect = f"{path}/oauth2-redirect"

    @app.get(path, include_in_schema=False)
    async def _docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        )

    @app.get(redirect, include_in_schema=False)
    async def _oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_path, include_in_schema=False)
    async def _redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API reference",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
