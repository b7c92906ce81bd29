"""The round clock: time-driven transitions (deadlines) and opening rounds, safe from any number of processes.

Every worker calls :func:`tick_task` every ``tick_seconds`` and on check-ins that
find a round past its due state. A cheap read decides whether anything is due;
only then the task and round rows are locked and the decision is re-taken, so
concurrent ticks apply each transition exactly once.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from coordinator import secure_records, secure_rounds
from coordinator.db import Database, lock_all_shards, rounds
from coordinator.lifecycle import abandon_round, commit_round, open_next_round
from coordinator.metrics import Metrics
from coordinator.records import TaskRow, load_round, load_task_by_id, round_record
from coordinator.rounds import TERMINAL, RoundState, due_state


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


def tick_task(db: Database, metrics: Metrics, task_id: int, now: float) -> None:
    with db.read() as conn:
        task = load_task_by_id(conn, task_id)
        current = load_round(conn, task_id, task.current_round)
        secure_due = _secure_due(conn, task, current, now)
    if not (secure_due or needs_write(task, current, now)):
        return
    with db.write() as conn:
        task = load_task_by_id(conn, task_id, lock=True)
        current = load_round(conn, task_id, task.current_round)
        if current is not None:  # lock order task -> sum -> round: wait for an upload adding to this round
            lock_all_shards(conn, current._mapping["id"])
            current = load_round(conn, task_id, task.current_round, lock=True)
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
                commit_round(conn, task, current, now, metrics)
            elif due == RoundState.ABANDONED:
                abandon_round(conn, task, current, now, metrics)
            elif due != state:
                conn.execute(sa.update(rounds).where(rounds.c.id == current._mapping["id"]).values(state=due.value))
                return
            elif state not in TERMINAL:
                return
        open_next_round(conn, task_id, now)
