"""Frozen snapshots of database rows, and the queries that load them."""

from __future__ import annotations

import dataclasses
import json
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
            config=TaskCreate.model_validate_json(m["config"]),
            shapes=tuple(tuple(s) for s in json.loads(m["shapes"])),
            batch_size=m["batch_size"],
            seq_len=m["seq_len"],
            paused=bool(m["paused"]),
            finished=bool(m["finished"]),
            model_version=m["model_version"],
            current_round=m["current_round"],
            optimizer_state=m["optimizer_state"],
        )

    @property
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


def round_record(row: Row[Any]) -> RoundRecord:
    m = row._mapping
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
    )


def load_task(conn: Connection, population: str, *, lock: bool = False) -> TaskRow | None:
    query = sa.select(tasks).where(tasks.c.population == population)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else TaskRow.of(row)


def load_task_by_id(conn: Connection, task_id: int, *, lock: bool = False) -> TaskRow:
    query = sa.select(tasks).where(tasks.c.id == task_id)
    return TaskRow.of(conn.execute(query.with_for_update() if lock else query).one())


def load_round(conn: Connection, task_id: int, number: int | None, *, lock: bool = False) -> Row[Any] | None:
    if number is None:
        return None
    query = sa.select(*ROUND_FIELDS).where(rounds.c.task_id == task_id, rounds.c.number == number)
    return conn.execute(query.with_for_update() if lock else query).first()


def load_session(conn: Connection, session_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = sa.select(sessions).where(sessions.c.id == session_id)
    return conn.execute(query.with_for_update() if lock else query).first()


def model_sha256(conn: Connection, task_id: int, version: int) -> str:
    query = sa.select(models.c.weights_sha256).where(models.c.task_id == task_id, models.c.version == version)
    return str(conn.execute(query).scalar_one())


def json_counts(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def all_task_ids(db: Database) -> list[int]:
    with db.read() as conn:
        return [r[0] for r in conn.execute(sa.select(tasks.c.id).where(tasks.c.finished.is_(False)))]
