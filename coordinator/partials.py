"""A round's running sum lives in the memory of the coordinator processes, never on disk in the clear.

The threat (issue 14.8): an operator who reads the database files. If the
running sum were a database row rewritten at every upload, consecutive versions
in SQLite's WAL or PostgreSQL's dead tuples (and every backup) would differ by
exactly one device's update. The rule here: nothing written to disk differs
from an earlier write by fewer than ``k`` updates, ``k`` the round's minimum
(``min_reports``, the smallest number of updates a commit ever averages).

How (Bonawitz et al. 2019 §4.2: Aggregators are ephemeral and in-memory):

- each process adds the updates it accepts to an in-memory :class:`RotatedSum`
  (``coordinator.aggregation``), striped over a few locks so upload threads add
  in parallel; an upload's transaction writes counters only;
- once the round is due, the first process to tick it *claims* it: it makes an
  ephemeral X25519 key, keeps the private half in memory and writes the public
  half in its ``fk_partials`` row. Every other process that holds a partial
  seals it to that key (HPKE, ``coordinator.sealing``) and writes the
  ciphertext in its row; the claimer opens them, checks that the counts add up
  to the round's ``received``, unrotates once and commits. Only the committed
  model (a mean of at least ``k`` updates) is ever written in the clear.
- each process refreshes ``seen_at`` on its rows every tick (a heartbeat).

The durability trade-off: a coordinator crash loses the sums it held. A round
whose counted updates cannot all be gathered (a row of a process not seen for
``lease_seconds``, or counts that do not add up) is *abandoned* and the next
round opens; devices of the lost round get ``round_closed``. Committed models
are never at risk: they are written, in one transaction, only from a complete
sum. The counting (goal, exactly once per session token) stays in the database
exactly as before.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from coordinator.aggregation import RotatedSum, WeightedSum
from coordinator.db import Database, partials
from coordinator.logs import event
from coordinator.records import TaskRow
from coordinator.sealing import SealError, new_private_key, open_sealed, public_bytes, seal
from coordinator.sum_kernels import warm_up
from wire.update import UpdateMessage

logger = logging.getLogger(__name__)


class Gathered(enum.Enum):
    """Why a due round has no sum yet: WAIT (partials still coming) or LOST (a crash took some)."""

    WAIT = "wait"
    LOST = "lost"


@dataclasses.dataclass
class _Round:
    task_id: int
    stripes: list[RotatedSum | None]
    locks: list[threading.Lock]
    pending: int = 0
    key: X25519PrivateKey | None = None


class RoundPartials:
    """This process's in-memory share of the open rounds' sums, and its part in gathering them.

    ``owner`` is random per instance (a restarted process is a new owner).
    ``stripes`` sums per round let that many threads add at once (memory: one
    sum of the model's size per stripe in use).
    """

    def __init__(
        self, *, lease_seconds: float = 10.0, stripes: int = 2, dtype: type = np.float64, wait_seconds: float = 10.0
    ) -> None:
        if not (lease_seconds > 0 and stripes >= 1 and wait_seconds > 0):
            raise ValueError(f"need lease_seconds > 0, stripes >= 1, wait_seconds > 0; got {lease_seconds}, {stripes}")
        warm_up()  # compile the aggregation kernels now, not during the first upload
        self.owner = secrets.token_hex(16)
        self.lease_seconds = lease_seconds
        self._stripes = stripes
        self._dtype = dtype
        self._wait = wait_seconds
        self._rounds: dict[int, _Round] = {}
        self._cond = threading.Condition()

    # ------------------------------------------------------------------ adding (upload threads)

    def begin(self, conn: Connection, task_id: int, round_id: int, weight: float, now: float) -> None:
        """Inside the upload's transaction, after it was counted: count it in this process's row, expect an add.

        ``add`` or ``cancel`` must follow. Registered before the transaction commits, so a commit in this
        process waits for the add instead of missing it.
        """
        statement = _COUNT["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
        conn.execute(statement, {"p_round": round_id, "p_owner": self.owner, "p_weight": weight, "p_now": now})
        with self._cond:
            self._state(task_id, round_id).pending += 1

    def cancel(self, round_id: int) -> None:
        """The transaction after ``begin`` did not commit: nothing will be added."""
        self._settle(round_id)

    def add(
        self, round_id: int, shapes: Sequence[Sequence[int]], msg: UpdateMessage, weight: float, scale: float = 1.0
    ) -> None:
        """Add a validated, counted update (its transaction committed) to a free stripe of the round's sum.

        ``scale`` is the validation's clip factor: it shrinks the update, not its weight.
        """
        with self._cond:
            state = self._rounds.get(round_id)
        if state is None:  # the round closed meanwhile (abandoned): its sum is gone, nothing to add to
            return
        try:
            index = self._lock_stripe(state)
            try:
                stripe = state.stripes[index]
                if stripe is None:
                    stripe = RotatedSum(shapes, rotated=msg.rotation_seed is not None, dtype=self._dtype)
                    state.stripes[index] = stripe
                stripe.add(msg, weight, scale)
            finally:
                state.locks[index].release()
        finally:
            self._settle(round_id)

    def _lock_stripe(self, state: _Round) -> int:
        for i, lock in enumerate(state.locks):
            if lock.acquire(blocking=False):
                return i
        index = threading.get_ident() % len(state.locks)
        state.locks[index].acquire()
        return index

    def _settle(self, round_id: int) -> None:
        with self._cond:
            state = self._rounds.get(round_id)
            if state is not None:
                state.pending -= 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ reading (round clock)

    def _take(self, round_id: int) -> RotatedSum | None:
        """The merged stripes once no add is pending (None: nothing added here, or adds still running)."""
        with self._cond:
            state = self._rounds.get(round_id)
            if state is None:
                return None
            if not self._cond.wait_for(lambda: state.pending == 0, timeout=self._wait):
                return None
            out: RotatedSum | None = None
            for stripe in state.stripes:
                if stripe is None:
                    continue
                if out is None:
                    out = RotatedSum(stripe.shapes, rotated=stripe.rotated, dtype=stripe.total.dtype.type)
                out.merge(stripe)
            return out

    def forget(self, round_id: int) -> None:
        """Drop the round's sum and key from memory (it was committed, abandoned or handed over)."""
        with self._cond:
            self._rounds.pop(round_id, None)

    def forget_other_rounds(self, task_id: int, open_round_id: int | None) -> None:
        """Drop this task's rounds other than the open one (closed by another process)."""
        with self._cond:
            for round_id in [r for r, s in self._rounds.items() if s.task_id == task_id and r != open_round_id]:
                del self._rounds[round_id]

    def heartbeat(self, db: Database, now: float) -> None:
        """Tell the other processes that this one still holds its rounds' partials (``seen_at``)."""
        with self._cond:
            held = list(self._rounds)
        if held:
            with db.write() as conn:
                conn.execute(
                    sa.update(partials)
                    .where(partials.c.owner == self.owner, partials.c.round_id.in_(held))
                    .values(seen_at=now)
                )

    def lost(self, conn: Connection, round_id: int, now: float) -> bool:
        """Whether another process that counted updates of the round (or claimed it) is gone with its partial."""
        rows = conn.execute(
            sa.select(partials.c.count, partials.c.seen_at, partials.c.public_key, partials.c.sealed).where(
                partials.c.round_id == round_id, partials.c.owner != self.owner
            )
        ).all()
        holding = [r for r in rows if r.public_key is not None or (r._mapping["count"] > 0 and r.sealed is None)]
        return any(now - r.seen_at > self.lease_seconds for r in holding)

    def gather(
        self, conn: Connection, task: TaskRow, round_row: sa.Row, rotation_seed: int | None, now: float
    ) -> WeightedSum | Gathered:
        """The due round's whole sum if this process can commit it now; else WAIT or LOST.

        The caller holds the task and round locks (one gatherer at a time).
        """
        r = round_row._mapping
        round_id = int(r["id"])
        if self.lost(conn, round_id, now):
            return Gathered.LOST
        rows = conn.execute(sa.select(partials).where(partials.c.round_id == round_id).with_for_update()).all()
        claimer = next((row for row in rows if row.public_key is not None), None)
        if claimer is None:
            self._claim(conn, task.id, round_id, now)
        elif claimer.owner != self.owner:
            self._hand_over(conn, round_id, claimer.public_key, now)
            return Gathered.WAIT
        layout = _Layout(task.shapes, rotated=rotation_seed is not None)
        return self._combine(round_id, rows, int(r["received"]), layout, rotation_seed)

    def _claim(self, conn: Connection, task_id: int, round_id: int, now: float) -> None:
        key = new_private_key()
        with self._cond:
            self._state(task_id, round_id).key = key
        _ensure_row(conn, round_id, self.owner, now)
        conn.execute(
            sa.update(partials)
            .where(partials.c.round_id == round_id, partials.c.owner == self.owner)
            .values(public_key=public_bytes(key), seen_at=now)
        )

    def _hand_over(self, conn: Connection, round_id: int, public_key: bytes, now: float) -> None:
        """Seal this process's partial to the claimer and write it in this process's row (once)."""
        mine = self._take(round_id)
        if mine is None or mine.count == 0:
            return
        sealed = seal(public_key, mine.to_bytes(), _context(round_id, self.owner))
        conn.execute(
            sa.update(partials)
            .where(partials.c.round_id == round_id, partials.c.owner == self.owner)
            .values(sealed=sealed, seen_at=now)
        )
        self.forget(round_id)
        event(logger, "partial_sum_handed_over", round_id=round_id, updates=mine.count)

    def _combine(
        self, round_id: int, rows: Sequence[sa.Row], received: int, layout: _Layout, rotation_seed: int | None
    ) -> WeightedSum | Gathered:
        others = [row for row in rows if row.owner != self.owner and row._mapping["count"] > 0]
        if any(row.sealed is None for row in others):
            return Gathered.WAIT
        with self._cond:
            state = self._rounds.get(round_id)
            key = None if state is None else state.key
        if key is None:
            return Gathered.LOST
        total = self._take(round_id) or RotatedSum(layout.shapes, rotated=layout.rotated, dtype=self._dtype)
        counted_here = sum(row._mapping["count"] for row in rows if row.owner == self.owner)
        if total.count != counted_here:
            return Gathered.WAIT if self._pending(round_id) else Gathered.LOST
        for row in others:
            try:
                blob = open_sealed(key, row.sealed, _context(round_id, row.owner))
                part = RotatedSum.from_bytes(layout.shapes, rotated=layout.rotated, blob=blob)
            except (SealError, ValueError):
                return Gathered.LOST
            if part.count != row._mapping["count"]:
                return Gathered.LOST
            total.merge(part)
        if total.count != received:
            return Gathered.LOST
        return total.unrotated(rotation_seed)

    def _pending(self, round_id: int) -> bool:
        with self._cond:
            state = self._rounds.get(round_id)
            return state is not None and state.pending > 0

    def _state(self, task_id: int, round_id: int) -> _Round:
        """The round's in-memory state, made if new (the caller holds ``_cond``)."""
        state = self._rounds.get(round_id)
        if state is None:
            locks = [threading.Lock() for _ in range(self._stripes)]
            state = self._rounds[round_id] = _Round(task_id, [None] * self._stripes, locks)
        return state


@dataclasses.dataclass(frozen=True)
class _Layout:
    shapes: tuple[tuple[int, ...], ...]
    rotated: bool


def _context(round_id: int, owner: str) -> bytes:
    """What a sealed partial is bound to: its round and its sender."""
    return f"round={round_id}|owner={owner}".encode()


# Built once (an upload runs them; SQLAlchemy then reuses the compiled statements).
_ROW = {"round_id": sa.bindparam("p_round"), "owner": sa.bindparam("p_owner"), "count": 0, "weight": 0.0}
_ENSURE = {
    "postgresql": postgresql.insert(partials)
    .values(_ROW | {"seen_at": sa.bindparam("p_now")})
    .on_conflict_do_nothing(),
    "sqlite": sqlite.insert(partials).values(_ROW | {"seen_at": sa.bindparam("p_now")}).on_conflict_do_nothing(),
}


def _count_upsert(insert: Callable[..., Any]) -> Any:
    """One statement: this process's row of the round, created or counted up (``ON CONFLICT DO UPDATE``)."""
    new = insert(partials).values(
        _ROW | {"count": 1, "weight": sa.bindparam("p_weight"), "seen_at": sa.bindparam("p_now")}
    )
    return new.on_conflict_do_update(
        index_elements=[partials.c.round_id, partials.c.owner],
        set_={
            "count": partials.c.count + 1,
            "weight": partials.c.weight + new.excluded.weight,
            "seen_at": new.excluded.seen_at,
        },
    )


_COUNT = {"postgresql": _count_upsert(postgresql.insert), "sqlite": _count_upsert(sqlite.insert)}


def _ensure_row(conn: Connection, round_id: int, owner: str, now: float) -> None:
    """This process's row of the round (``INSERT ... ON CONFLICT DO NOTHING``: concurrent first uploads agree)."""
    statement = _ENSURE["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    conn.execute(statement, {"p_round": round_id, "p_owner": owner, "p_now": now})


def drop_partials(conn: Connection, round_id: int) -> None:
    """Delete a closed round's rows (counts and ciphertexts; the keys die with the processes' memory)."""
    conn.execute(sa.delete(partials).where(partials.c.round_id == round_id))
