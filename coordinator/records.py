"""Frozen snapshots of database rows, and the queries that load them."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coordinator.db import ROUND_FIELDS, Database, models, rounds, sessions, tasks
from coordinator.rounds import RoundPlan, RoundRecord, RoundState
from wire.protocol import TaskCreate


@dataclasses.dataclass(frozen=True)
class TaskRow:
    id: int
    population: str
    name: str
    config: TaskCreate
    shapes: tuple[tuple[int, ...], ...]
    batch_size: int
    seq_len: int
    paused: bool
    finished: bool
    model_version: int
    current_round: int | None
    optimizer_state: bytes | None

    @classmethod
    def of(cls, row: Row[Any]) -> TaskRow:
        m = row._mapping
        return cls(
            id=m["id"],
            population=m["population"],
            name=m["name"],
            config=_task_config(m["config"]),
            shapes=tuple(tuple(s) for s in json.loads(m["shapes"])),
            batch_size=m["batch_size"],
            seq_len=m["seq_len"],
            paused=bool(m["paused"]),
            finished=bool(m["finished"]),
            model_version=m["model_version"],
            current_round=m["current_round"],
            optimizer_state=m.get("optimizer_state"),  # absent from the check-in's view (checkin_views)
        )

    @functools.cached_property  # every refused check-in's retry window reads it; the config never changes
    def plan(self) -> RoundPlan:
        c = self.config
        return RoundPlan(
            goal=c.goal_count,
            over_selection=c.over_selection,
            min_reports=c.min_reports or c.goal_count,
            selection_seconds=c.selection_seconds,
            report_seconds=c.report_seconds,
        )

    @property
    def max_weight(self) -> float:
        """The largest FedAvg weight (target tokens) a device can honestly claim."""
        c = self.config
        return float(c.max_rows * self.seq_len * c.local_epochs)


def token_sha256(token: str) -> str:
    """Tokens are stored only as their sha256."""
    return hashlib.sha256(token.encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _task_config(text: str) -> TaskCreate:
    """A task's config never changes once created: parse each distinct JSON text once (frozen model)."""
    return TaskCreate.model_validate_json(text)


def round_record(row: Row[Any]) -> RoundRecord:
    return record_of(row._mapping)


def record_of(m: Mapping[Any, Any]) -> RoundRecord:
    """A round's record from its columns by name."""
    return RoundRecord(
        state=RoundState(m["state"]),
        goal=m["goal"],
        target=m["target"],
        min_reports=m["min_reports"],
        assigned=m["assigned"],
        received=m["received"],
        opened_at=m["opened_at"],
        selection_deadline=m["selection_deadline"],
        report_deadline=m["report_deadline"],
        aborted=m["aborted"],
    )


# Statements built once (SQLAlchemy then reuses their compiled form and cache keys: the check-in path is hot).
_TASK_BY_POPULATION = sa.select(tasks).where(tasks.c.population == sa.bindparam("population"))
_TASK_BY_ID = sa.select(tasks).where(tasks.c.id == sa.bindparam("task_id"))
_ROUND = sa.select(*ROUND_FIELDS).where(
    rounds.c.task_id == sa.bindparam("task_id"), rounds.c.number == sa.bindparam("n")
)
_SESSION = sa.select(sessions).where(sessions.c.id == sa.bindparam("session_id"))
_MODEL_SHA = sa.select(models.c.weights_sha256).where(
    models.c.task_id == sa.bindparam("task_id"), models.c.version == sa.bindparam("version")
)
_LOCKED = {q: q.with_for_update() for q in (_TASK_BY_POPULATION, _TASK_BY_ID, _ROUND, _SESSION)}


def _query(query: sa.Select[Any], lock: bool) -> sa.Select[Any]:
    return _LOCKED[query] if lock else query


def load_task(conn: Connection, population: str, *, lock: bool = False) -> TaskRow | None:
    row = conn.execute(_query(_TASK_BY_POPULATION, lock), {"population": population}).first()
    return None if row is None else TaskRow.of(row)


def load_task_by_id(conn: Connection, task_id: int, *, lock: bool = False) -> TaskRow:
    return TaskRow.of(conn.execute(_query(_TASK_BY_ID, lock), {"task_id": task_id}).one())


def load_round(conn: Connection, task_id: int, number: int | None, *, lock: bool = False) -> Row[Any] | None:
    if number is None:
        return None
    return conn.execute(_query(_ROUND, lock), {"task_id": task_id, "n": number}).first()


def load_session(conn: Connection, session_id: str, *, lock: bool = False) -> Row[Any] | None:
    return conn.execute(_query(_SESSION, lock), {"session_id": session_id}).first()


def model_sha256(conn: Connection, task_id: int, version: int) -> str:
    return str(conn.execute(_MODEL_SHA, {"task_id": task_id, "version": version}).scalar_one())


def all_task_ids(db: Database) -> list[int]:
    with db.read() as conn:
        return [r[0] for r in conn.execute(sa.select(tasks.c.id).where(tasks.c.finished.is_(False)))]
