"""The round clock: time-driven transitions (deadlines) and opening rounds, safe from any number of processes.

Every worker calls :func:`tick_task` every ``tick_seconds`` and on check-ins that
find a round past its due state. A cheap read decides whether anything is due;
only then the task and round rows are locked and the decision is re-taken, so
concurrent ticks apply each transition exactly once. A due plain round commits
once ``coordinator.partials`` has gathered every process's in-memory partial
sum (a tick or two with several processes); a round whose partial died with its
process is abandoned.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator import secure_records, secure_rounds
from coordinator.db import Database, rounds
from coordinator.lifecycle import abandon_round, commit_round, open_next_round
from coordinator.logs import event
from coordinator.metrics import Metrics
from coordinator.partials import Gathered, RoundPartials
from coordinator.records import TaskRow, load_round, load_task_by_id, round_record
from coordinator.rounds import TERMINAL, RoundState, due_state
from wire.codec import CodecSpec, round_rotation_seed

logger = logging.getLogger(__name__)


def needs_write(task: TaskRow, current: sa.Row[Any] | None, now: float) -> bool:
    """Whether the task's round must move (a deadline or the goal) or a new round must open."""
    if current is None:
        return not (task.paused or task.finished)
    state = RoundState(current._mapping["state"])
    if state in TERMINAL:
        return not (task.paused or task.finished)
    return due_state(round_record(current), now) != state


def _secure_due(conn: Any, task: TaskRow, current: sa.Row[Any] | None, now: float) -> bool:
    if not task.config.secure_aggregation or current is None:
        return False
    return RoundState(current._mapping["state"]) not in TERMINAL and secure_records.due(
        conn, current._mapping["id"], now
    )


def _plain_open(task: TaskRow, current: sa.Row[Any] | None) -> bool:
    if current is None or task.config.secure_aggregation:
        return False
    return RoundState(current._mapping["state"]) not in TERMINAL


def tick_task(db: Database, metrics: Metrics, partials: RoundPartials, task_id: int, now: float) -> None:
    with db.read() as conn:
        task = load_task_by_id(conn, task_id)
        current = load_round(conn, task_id, task.current_round)
        secure_due = _secure_due(conn, task, current, now)
        lost = _plain_open(task, current) and current is not None and partials.lost(conn, current._mapping["id"], now)
    partials.forget_other_rounds(task_id, None if current is None else current._mapping["id"])
    if not (secure_due or lost or needs_write(task, current, now)):
        return
    with db.write() as conn:
        task = load_task_by_id(conn, task_id, lock=True)
        current = load_round(conn, task_id, task.current_round, lock=True)
        if _plain_open(task, current) and current is not None and partials.lost(conn, current._mapping["id"], now):
            _abandon_lost(conn, partials, task, current, now, metrics)
            open_next_round(conn, task_id, now)
            return
        settled = current is not None and _secure_due(conn, task, current, now)
        if settled and current is not None and secure_rounds.settle(conn, task, current, now, metrics):
            open_next_round(conn, task_id, now)  # the secure round was committed or abandoned
            return
        if not needs_write(task, current, now):
            return  # another process got here first
        if current is not None:
            state = RoundState(current._mapping["state"])
            due = due_state(round_record(current), now)
            if due == RoundState.COMMITTED:
                if not _commit_plain(conn, partials, task, current, now, metrics):
                    return  # partials still coming
            elif due == RoundState.ABANDONED:
                abandon_round(conn, task, current, now, metrics)
                partials.forget(current._mapping["id"])
            elif due != state:
                conn.execute(sa.update(rounds).where(rounds.c.id == current._mapping["id"]).values(state=due.value))
                return
            elif state not in TERMINAL:
                return
        open_next_round(conn, task_id, now)


def _commit_plain(
    conn: Connection, partials: RoundPartials, task: TaskRow, current: sa.Row[Any], now: float, metrics: Metrics
) -> bool:
    """Commit the due plain round from its gathered partial sums; False while they are still coming."""
    r = current._mapping
    rotated = CodecSpec.parse(task.config.codec).bits is not None
    rotation = round_rotation_seed(task.config.seed, r["number"]) if rotated else None
    gathered = partials.gather(conn, task, current, rotation, now)
    if gathered is Gathered.WAIT:
        return False
    if gathered is Gathered.LOST:
        _abandon_lost(conn, partials, task, current, now, metrics)
        return True
    commit_round(conn, task, current, gathered, now, metrics)
    partials.forget(r["id"])
    return True


def _abandon_lost(
    conn: Connection, partials: RoundPartials, task: TaskRow, current: sa.Row[Any], now: float, metrics: Metrics
) -> None:
    """A process that held part of the round's sum is gone (a crash): the round cannot commit its mean."""
    r = current._mapping
    event(
        logger, "round_sum_lost", logging.WARNING, population=task.population, round=r["number"], received=r["received"]
    )
    abandon_round(conn, task, current, now, metrics)
    partials.forget(r["id"])
