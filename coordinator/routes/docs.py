"""``/docs``: Swagger UI served from the ``swagger-ui-bundle`` package, so it works without internet.

FastAPI's default page loads Swagger UI's script and CSS from a CDN, which
leaves ``/docs`` blank on an air-gapped coordinator. This is FastAPI's
documented self-hosting recipe (``docs_url=None`` plus
``get_swagger_ui_html`` with local URLs) over the dist files that
``swagger-ui-bundle`` ships. ReDoc (CDN-only) is turned off in ``create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed

ASSETS = "/static/swagger-ui"


def mount_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve the API docs page at ``path`` and Swagger UI's files under :data:`ASSETS`."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
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
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        )

    @app.get(redirect, include_in_schema=False)
    async def _oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
