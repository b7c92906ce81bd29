"""Fixtures of the coordinator tests: a fake clock and an app on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from coordinator_fixtures import API_KEY, Clock, PostgresSchema, postgres_available
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coordinator import CoordinatorSettings, Database, create_app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> CoordinatorSettings:
    return CoordinatorSettings(db=f"sqlite:///{tmp_path / 'coordinator.db'}", api_key=SecretStr(API_KEY))


@pytest.fixture
def client(settings: CoordinatorSettings, clock: Clock) -> Iterator[TestClient]:
    db = Database(settings.db)
    db.create_schema()
    app = create_app(settings, clock=clock, db=db, run_clock=False)
    with TestClient(app) as test_client:
        yield test_client
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database with the schema, on SQLite and on PostgreSQL (its own schema; skipped if unreachable)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'c.db'}")
        database.create_schema()
        yield database
        database.dispose()
        return
    if not postgres_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    with PostgresSchema() as schema:
        database = Database(schema.url.replace("postgresql://", "postgresql+psycopg://"))
        database.create_schema()
        try:
            yield database
        finally:
            database.dispose()
