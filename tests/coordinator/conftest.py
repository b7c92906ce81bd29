"""Fixtures of the coordinator tests: a fake clock and an app on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from coordinator_fixtures import API_KEY, Clock
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
