"""The assignment claim statement itself (``coordinator.service._CLAIM``), on SQLite, with no pre-check in front.

The check-in path skips the write when the round does not look open (``rounds.can_assign``: a cheap read that
saves a write transaction per refused check-in), so only a test of the statement alone shows that the
conditional UPDATE never lets a round go past its target.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from coordinator_fixtures import Clock
from test_partials import _process, _task

from coordinator import Database
from coordinator.db import rounds
from coordinator.service import _CLAIM


def _claim(db: Database, now: float) -> tuple[int, ...] | None:
    with db.write() as conn:
        task_id = conn.execute(sa.select(rounds.c.task_id)).scalar_one()
        row = conn.execute(_CLAIM, {"claim_task": task_id, "claim_now": now}).first()
    return None if row is None else tuple(row)


def test_claim_at_target_assigns_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.create_schema()
    clock = Clock()
    _task(db, clock, "float32", goal=2)  # over-selection 2: target 4
    coord = _process(db, clock)
    coord.tick()
    claimed = [_claim(db, clock()) for _ in range(4)]
    assert [c is not None for c in claimed] == [True, True, True, True]
    assert [c[2] for c in claimed if c is not None] == [1, 2, 3, 4]  # assigned after each claim
    assert _claim(db, clock()) is None  # at its target: the statement alone refuses
    with db.read() as conn:
        assert conn.execute(sa.select(rounds.c.assigned, rounds.c.target)).one() == (4, 4)
    db.dispose()
