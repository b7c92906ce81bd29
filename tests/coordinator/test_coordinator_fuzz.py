"""schemathesis fuzzing of the coordinator's OpenAPI schema: no input makes it answer 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from coordinator_fixtures import API_KEY, Clock, admin_headers, create_task
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr

from coordinator import CoordinatorSettings, Database, create_app


@pytest.fixture
def api_schema(tmp_path: Path) -> Any:
    s = CoordinatorSettings(db=f"sqlite:///{tmp_path / 'fuzz.db'}", api_key=SecretStr(API_KEY), max_upload_bytes=4096)
    db = Database(s.db)
    db.create_schema()
    app = create_app(s, clock=Clock(), db=db, run_clock=False)
    with TestClient(app) as client:
        create_task(client)  # a real population, so generated requests can reach deeper code
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_openapi_never_5xx(case: Any) -> None:
    response = case.call(headers=admin_headers())
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"
