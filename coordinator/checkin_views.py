"""What a check-in reads of tasks and rounds: an in-memory view of every population, read again when stale.

Pace steering turns most devices of a large population away (Bonawitz et al. 2019 §2.3), so the refusals
(round full or closed, paused, finished, unknown population) must not cost a database round trip each.
:class:`CheckinViews` holds one :class:`PopulationView` per task, all read in one read transaction by one
thread, and reads them again when

- they are older than ``max_age`` seconds: what other processes change is seen within that;
- this process committed a write that may have changed a task or a round since (``Database.changes``):
  a process never answers from a view older than its own last write;
- a deadline of the asking population's round passed since (``clock.needs_write``): that read ticks the
  round clock for it first, as every check-in that found a round past its due state did before;
- a check-in's claim found the round full or closed (``invalidate``).

A view only refuses or steers; an assignment is decided by the claim's conditional UPDATE
(``coordinator.claims``), so a stale view can send a device away for one retry window, never assign past a
target. Check-ins that find the view stale wait for one read together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.clock import needs_write
from coordinator.db import Database, rounds, tasks
from coordinator.pace import expected_end
from coordinator.records import TaskRow, record_of
from coordinator.rounds import TERMINAL, RoundRecord

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 0.25  # the default of CoordinatorSettings.checkin_view_seconds
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class PopulationView:
    """A task and its current round as read at one moment.

    ``task`` carries no optimizer state (None): a check-in never needs it, and FedAdam moments are the size
    of the model. ``round_end`` is when the open round is expected to end (``pace.expected_end``; None when
    no round is open). ``due``: the round clock had to move when this was read, even after a tick (a sum
    still coming from another process), so the view is not read again for that alone.
    """

    task: TaskRow
    round: RoundRecord | None
    round_end: float | None
    due: bool


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    views: Mapping[str, PopulationView]
    read_at: float
    changes: int  # Database.changes before the read
    epoch: int  # CheckinViews._epoch before the read


_TASK_FIELDS = tuple(c for c in tasks.c if c.name != "optimizer_state")
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(RoundRecord))
_ROUND_FIELDS = tuple(rounds.c[name].label(f"round_{name}") for name in _RECORD_FIELDS)
_VIEWS: sa.Select[Any] = sa.select(*_TASK_FIELDS, rounds.c.id.label("round_id"), *_ROUND_FIELDS).outerjoin(
    rounds, sa.and_(rounds.c.task_id == tasks.c.id, rounds.c.number == tasks.c.current_round)
)
_RECENT_DURATIONS = (
    sa.select(rounds.c.closed_at - rounds.c.opened_at)
    .where(rounds.c.task_id == sa.bindparam("recent_task"), rounds.c.closed_at.is_not(None))
    .order_by(rounds.c.number.desc())
    .limit(5)
)


def _round(m: sa.RowMapping) -> RoundRecord | None:
    if m["round_id"] is None:
        return None
    return record_of({name: m[f"round_{name}"] for name in _RECORD_FIELDS})


def load_views(conn: Connection, now: float) -> dict[str, PopulationView]:
    """Every task's view at ``now``: one statement, and one more per open round (its recent durations)."""
    views = {}
    for row in conn.execute(_VIEWS).all():  # all first: the loop runs more statements on this connection
        m = row._mapping
        task, current = TaskRow.of(row), _round(m)
        end = None
        if current is not None and current.state not in TERMINAL:
            recent = [float(d) for d in conn.execute(_RECENT_DURATIONS, {"recent_task": task.id}).scalars()]
            end = expected_end(current.opened_at, current.report_deadline, recent)
        views[task.population] = PopulationView(task, current, end, needs_write(task, current, now))
    return views


class CheckinViews:
    """The views of this process, read by one thread (also lent to other short database work of check-ins)."""

    def __init__(self, db: Database, *, tick: Callable[[int, float], None], max_age: float = MAX_AGE_SECONDS) -> None:
        if not max_age > 0:
            raise ValueError(f"max_age must be > 0, got {max_age}")
        self._db = db
        self._tick = tick
        self._max_age = max_age
        self._snapshot: _Snapshot | None = None
        self._epoch = 0
        self._reading: concurrent.futures.Future[_Snapshot] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    async def view(self, population: str, now: float) -> PopulationView | None:
        """The population's view (None: no such population), read again first if stale."""
        snapshot = self._snapshot
        if snapshot is None or not self._fresh(snapshot, population, now):
            pool = self._pool()
            with self._lock:
                if self._reading is None or self._reading.done():
                    self._reading = pool.submit(self._read, now)
                reading = self._reading
            snapshot = await asyncio.wrap_future(reading)
        return snapshot.views.get(population)

    def invalidate(self) -> None:
        """Read the views again before the next check-in answers (a claim found its round full or closed)."""
        self._epoch += 1

    async def in_thread(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the views' thread (short database work of a check-in, off the event loop)."""
        return await asyncio.wrap_future(self._pool().submit(fn, *args))

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkin-views")
            return self._executor

    def _fresh(self, s: _Snapshot, population: str, now: float) -> bool:
        if s.changes != self._db.changes or s.epoch != self._epoch or not 0 <= now - s.read_at < self._max_age:
            return False
        v = s.views.get(population)
        return v is None or v.due or not needs_write(v.task, v.round, now)

    def _read(self, now: float) -> _Snapshot:
        changes, epoch = self._db.changes, self._epoch
        with self._db.read() as conn:
            views = load_views(conn, now)
        due = [v.task.id for v in views.values() if v.due]
        if due:  # move the round clock first, as a check-in that finds a round past its due state must
            for task_id in due:
                try:
                    self._tick(task_id, now)
                except Exception:  # the clock ticks again within a second; the check-ins go on with the read
                    logger.exception("round clock tick from a check-in failed")
            changes = self._db.changes
            with self._db.read() as conn:
                views = load_views(conn, now)
        snapshot = _Snapshot(views, now, changes, epoch)
        self._snapshot = snapshot
        return snapshot
