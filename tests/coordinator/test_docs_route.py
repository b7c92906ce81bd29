"""coordinator/routes/docs.py: ``/docs`` loads Swagger UI from the coordinator itself, never a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_references_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/api-docs/swagger-ui-bundle.js" in sources
    assert "/static/api-docs/swagger-ui.css" in sources
    assert [s for s in sources if "://" in s] == []
    assert "url: '/openapi.json'" in page.text


def test_docs_assets_are_served(client: TestClient) -> None:
    script = client.get("/static/api-docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/static/api-docs/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_redoc_is_local_too_and_docs_stay_out_of_the_schema(client: TestClient) -> None:
    page = client.get("/redoc").text
    assert '<script src="/static/api-docs/redoc.standalone.js">' in page and "fonts.googleapis" not in page
    assert client.get("/static/api-docs/redoc.standalone.js").status_code == 200
    assert not any(p.startswith(("/docs", "/static")) for p in client.get("/openapi.json").json()["paths"])
