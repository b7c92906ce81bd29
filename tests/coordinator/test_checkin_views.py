"""The check-in's in-memory view of tasks and rounds (``coordinator.checkin_views``): when it reads, and what."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from coordinator_fixtures import Clock, sql_statements
from test_partials import _process, _task

from coordinator import Admin, Database
from coordinator.checkin_views import CheckinViews, PopulationView
from coordinator.rounds import RoundState


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'v.db'}")
    database.create_schema()
    yield database
    database.dispose()


class _Ticks:
    """The round clock of one process, counting the ticks the views ask for."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.calls: list[tuple[int, float]] = []
        self._coordinator = _process(db, clock)

    def __call__(self, task_id: int, now: float) -> None:
        self.calls.append((task_id, now))
        self._coordinator.tick_task(task_id, now)


def _view(views: CheckinViews, population: str, now: float) -> PopulationView | None:
    return asyncio.run(views.view(population, now))


def _setup(db: Database, clock: Clock, max_age: float = 0.25) -> tuple[CheckinViews, _Ticks]:
    _task(db, clock, "float32")  # goal 4, over-selection 2: target 8; selection 60 s
    ticks = _Ticks(db, clock)
    return CheckinViews(db, tick=ticks, max_age=max_age), ticks


def test_views_answer_from_memory_until_stale(sqlite_db: Database, clock: Clock) -> None:
    views, ticks = _setup(sqlite_db, clock)
    try:
        with sql_statements() as sent:
            first = _view(views, "p", clock())
        assert first is not None and first.round is not None and first.round.state == RoundState.SELECTING
        assert ticks.calls == []  # creating the task opened round 0: nothing was due
        assert sent == ["BEGIN", "SELECT", "SELECT"]  # the views, then the open round's recent durations
        with sql_statements() as sent:
            assert _view(views, "p", clock() + 0.2) is first
            assert _view(views, "nobody", clock() + 0.2) is None  # unknown populations too: from memory
        assert sent == []
        with sql_statements() as sent:
            later = _view(views, "p", clock() + 0.25)  # max_age: read again (what other processes changed)
        assert sent == ["BEGIN", "SELECT", "SELECT"]
        assert later is not first and later == first
    finally:
        views.close()


def test_views_read_again_after_this_process_writes(sqlite_db: Database, clock: Clock) -> None:
    views, _ = _setup(sqlite_db, clock, max_age=1000.0)
    try:
        assert not _view(views, "p", clock()).task.paused  # type: ignore[union-attr]
        Admin(sqlite_db, clock=clock).set_paused("p", True)
        paused = _view(views, "p", clock())  # same instant, but this process wrote since the read
        assert paused is not None and paused.task.paused
        views.invalidate()
        with sql_statements() as sent:
            assert _view(views, "p", clock()) == paused
        assert "SELECT" in sent
    finally:
        views.close()


def test_views_tick_a_round_whose_deadline_passed_once(sqlite_db: Database, clock: Clock) -> None:
    views, ticks = _setup(sqlite_db, clock, max_age=1000.0)
    try:
        opened = _view(views, "p", clock())
        assert opened is not None and opened.round is not None and not opened.due
        clock.advance(60.0)  # the selection deadline, with 0 of the minimum 4 assigned: the round is abandoned
        moved = _view(views, "p", clock())
        assert ticks.calls == [(opened.task.id, clock())]
        assert moved is not None and moved.round is not None
        assert (moved.round.state, moved.round.opened_at) == (RoundState.SELECTING, clock())  # the next round
        with sql_statements() as sent:
            assert _view(views, "p", clock() + 1.0) is moved
        assert sent == []
    finally:
        views.close()
