"""The round clock: time-driven transitions (deadlines) and opening rounds, safe from any number of processes.

Every worker calls :func:`tick_task` every ``tick_seconds`` and on check-ins that
find a round past its due state. A cheap read decides whether anything is due;
only then the task and round rows are locked and the decision is re-taken, so
concurrent ticks apply each transition exactly once. A due round commits once its
aggregator (``coordinator.aggregators``) settles it: a plain round when
``coordinator.partials`` has gathered every process's in-memory partial sum (a
tick or two with several processes), a secure one when its sum is unmasked. An
aggregator can also need the clock before the round's deadlines (a partial that
died with its process, a secure phase's deadline); which one, the clock never asks.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregators import RoundAggregator, for_task
from coordinator.db import Database, rounds
from coordinator.lifecycle import abandon_round, commit_round, open_next_round
from coordinator.metrics import Metrics
from coordinator.partials import RoundPartials
from coordinator.records import TaskRow, load_round, load_task_by_id, round_record
from coordinator.rounds import TERMINAL, RoundRecord, RoundState, due_state

logger = logging.getLogger(__name__)


def needs_write(task: TaskRow, current: RoundRecord | None, now: float) -> bool:
    """Whether the task's round must move (a deadline or the goal) or a new round must open."""
    if current is None or current.state in TERMINAL:
        return not (task.paused or task.finished)
    return due_state(current, now) != current.state


def _record(current: sa.Row[Any] | None) -> RoundRecord | None:
    return None if current is None else round_record(current)


def _live(current: sa.Row[Any] | None) -> bool:
    """Whether a round is open (not committed or abandoned)."""
    return current is not None and RoundState(current._mapping["state"]) not in TERMINAL


def tick_task(db: Database, metrics: Metrics, partials: RoundPartials, task_id: int, now: float) -> None:
    with db.read() as conn:
        task = load_task_by_id(conn, task_id)
        current = load_round(conn, task_id, task.current_round)
        aggregator = for_task(task)
        pending = current is not None and _live(current) and aggregator.pending(conn, partials, current, now)
    partials.forget_other_rounds(task_id, None if current is None else current._mapping["id"])
    if not (pending or needs_write(task, _record(current), now)):
        return
    with db.write() as conn:
        task = load_task_by_id(conn, task_id, lock=True)
        current = load_round(conn, task_id, task.current_round, lock=True)
        aggregator = for_task(task)
        pending = current is not None and _live(current) and aggregator.pending(conn, partials, current, now)
        if pending and current is not None and _settle(conn, aggregator, partials, task, current, now, metrics):
            open_next_round(conn, task_id, now)  # committed or abandoned (a lost partial, a secure outcome)
            return
        if not needs_write(task, _record(current), now):
            return  # another process got here first
        if current is not None:
            state = RoundState(current._mapping["state"])
            due = due_state(round_record(current), now)
            if due == RoundState.COMMITTED:
                if not _settle(conn, aggregator, partials, task, current, now, metrics):
                    return  # its sum is still coming
            elif due == RoundState.ABANDONED:
                abandon_round(conn, task, current, now, metrics)
                aggregator.forget(partials, current._mapping["id"])
            elif due != state:
                conn.execute(sa.update(rounds).where(rounds.c.id == current._mapping["id"]).values(state=due.value))
                return
            elif state not in TERMINAL:
                return
        open_next_round(conn, task_id, now)


def _settle(
    conn: Connection,
    aggregator: RoundAggregator,
    partials: RoundPartials,
    task: TaskRow,
    current: sa.Row[Any],
    now: float,
    metrics: Metrics,
) -> bool:
    """Commit the round's settled sum or abandon it; False while its aggregation is not done yet."""
    settled = aggregator.settle(conn, partials, task, current, now)
    if settled.waiting:
        return False
    round_id = current._mapping["id"]
    if settled.total is None:
        abandon_round(conn, task, current, now, metrics)
    else:
        fresh = conn.execute(sa.select(rounds).where(rounds.c.id == round_id)).one()  # what settle counted
        commit_round(conn, task, fresh, settled.total, now, metrics)
    aggregator.forget(partials, round_id)
    return True
