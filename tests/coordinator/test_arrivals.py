"""coordinator.arrivals: check-in counts shared through the database by several processes (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from coordinator import Database
from coordinator.arrivals import DbArrivalStore, process_name
from coordinator.db import arrivals


def test_db_arrival_store_sums_every_process_within_the_window(db: Database) -> None:
    a, b = DbArrivalStore(db, "host1-10-aa"), DbArrivalStore(db, "host2-10-bb")
    assert a.exchange(1, {100: 3, 101: 2}, since=92) == 5
    assert b.exchange(1, {101: 4}, since=92) == 9
    assert b.exchange(2, {101: 7}, since=92) == 7  # another task's counts are its own
    assert a.exchange(1, {101: 1}, since=92) == 10  # the same second again adds up
    assert a.exchange(1, {}, since=101) == 7  # 100 left the window: a's row of it is gone, the rest summed
    with db.read() as conn:
        rows = conn.execute(sa.select(arrivals.c.process, arrivals.c.second, arrivals.c.count)
                            .where(arrivals.c.task_id == 1).order_by(arrivals.c.process)).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("host1-10-aa", 101, 3), ("host2-10-bb", 101, 4)]


def test_db_arrival_store_unreachable_database_is_none_not_an_error(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'never-created.db'}")  # no schema: every statement fails
    assert DbArrivalStore(db, "p").exchange(1, {5: 1}, since=0) is None
    db.dispose()


def test_process_names_differ_and_fit(tmp_path: Path) -> None:
    names = {process_name() for _ in range(20)}
    assert len(names) == 20 and all(0 < len(n) <= 64 for n in names)
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ValueError, match="process name must be 1-64 characters"):
        DbArrivalStore(db, "x" * 65)
    db.dispose()
