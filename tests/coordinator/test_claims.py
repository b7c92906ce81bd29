"""Assignment claims (``coordinator.claims``) on SQLite and PostgreSQL: the batch, the deciding statement alone,
and claim threads of two "processes" (two Database pools) racing for one round."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
import sqlalchemy as sa
from coordinator_fixtures import Clock
from test_partials import _process, _task

from coordinator import Database
from coordinator import claims as claims_module
from coordinator.claims import ALREADY_ASSIGNED, ROUND_FULL, Claim, ClaimOutcome, ClaimQueue, claim_batch, session_seed
from coordinator.credentials import participant
from coordinator.db import rounds, sessions
from coordinator.logs import session_ref
from coordinator.records import TaskRow, load_task
from wire.protocol import Assignment


def _open_round(db: Database, clock: Clock, goal: int = 2) -> TaskRow:
    """Population "p" with round 0 selecting; over-selection 2, so its target is 2 * goal."""
    _task(db, clock, "float32", goal=goal)
    _process(db, clock).tick()
    with db.read() as conn:
        task = load_task(conn, "p")
    assert task is not None
    return task


def _device(i: int) -> Claim:
    return Claim(device_id=f"{i:032x}", max_weight=10.0)


def _claims(queue: ClaimQueue, task: TaskRow, devices: list[int], clock: Clock) -> list[ClaimOutcome]:
    """The outcomes of concurrent check-ins of ``devices``, awaited as the check-in route awaits them."""

    async def check_ins() -> list[ClaimOutcome]:
        return list(await asyncio.gather(*(queue.claim(task, _device(i), clock()) for i in devices)))

    return asyncio.run(check_ins())


def _counts(db: Database) -> tuple[int, int]:
    """(the round's assigned, sessions stored)."""
    with db.read() as conn:
        assigned = conn.execute(sa.select(rounds.c.assigned)).scalar_one()
        stored = conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one()
    return int(assigned), int(stored)


def test_claim_batch_takes_the_free_slots_in_order_and_refuses_the_rest(db: Database, clock: Clock) -> None:
    task = _open_round(db, clock)  # target 4
    with db.write() as conn:
        out = claim_batch(conn, task, [_device(i) for i in range(6)], clock())
    assert [isinstance(o, Assignment) for o in out] == [True] * 4 + [False] * 2
    assert out[4:] == [ROUND_FULL, ROUND_FULL]
    won = [o for o in out if isinstance(o, Assignment)]
    assert [a.seed for a in won] == [session_seed(task.config.seed, 0, i) for i in (1, 2, 3, 4)]  # assignment order
    assert {(a.round, a.model_version, a.population) for a in won} == {(0, 0, "p")}
    assert _counts(db) == (4, 4)
    with db.write() as conn:
        assert claim_batch(conn, task, [_device(9)], clock()) == [ROUND_FULL]
    assert _counts(db) == (4, 4)


def test_claim_batch_gives_a_credential_one_session_a_round(db: Database, clock: Clock) -> None:
    task = _open_round(db, clock)
    a, b = _device(1), _device(2)
    with db.write() as conn:
        first = claim_batch(conn, task, [a], clock())
    with db.write() as conn:
        out = claim_batch(conn, task, [a, b, b], clock())
    assert isinstance(first[0], Assignment) and isinstance(out[1], Assignment)
    assert (out[0], out[2]) == (ALREADY_ASSIGNED, ALREADY_ASSIGNED)  # held before, and twice in one batch
    assert _counts(db) == (2, 2)


def test_claim_batch_refuses_a_round_past_its_selection_deadline(db: Database, clock: Clock) -> None:
    task = _open_round(db, clock)
    clock.advance(task.config.selection_seconds)
    with db.write() as conn:
        assert claim_batch(conn, task, [_device(1), _device(2)], clock()) == [ROUND_FULL, ROUND_FULL]
    assert _counts(db) == (0, 0)


def test_claim_statement_alone_never_passes_target_nor_a_round_that_moved(db: Database, clock: Clock) -> None:
    """The deciding UPDATE with no lock and no check in front of it (the batch skips it when it would fail)."""
    task = _open_round(db, clock)  # target 4
    with db.read() as conn:
        round_id = conn.execute(sa.select(rounds.c.id)).scalar_one()

    def claim(seen: int, n: int) -> int | None:
        params = {"claim_round": round_id, "claim_seen": seen, "claim_n": n, "claim_now": clock()}
        with db.write() as conn:
            return conn.execute(claims_module._CLAIM, params).scalar()

    assert claim(0, 5) is None  # more than the target
    assert claim(0, 3) == 3
    assert claim(0, 1) is None  # assigned moved since it was read
    assert claim(3, 2) is None  # past the target
    assert claim(3, 1) == 4
    assert claim(4, 1) is None  # at the target
    assert _counts(db) == (4, 0)
    del task


def test_claim_queues_of_two_processes_assign_exactly_the_target(db: Database, clock: Clock) -> None:
    """60 concurrent claims of 30 devices (each sends two, one to each process) for a target of 20."""
    task = _open_round(db, clock, goal=10)
    other = Database(db.url)  # a second process: its own pool, its own claim thread
    queues = [ClaimQueue(db, max_batch=7), ClaimQueue(other, max_batch=5)]

    async def check_ins() -> list[ClaimOutcome]:
        return list(await asyncio.gather(*(queues[i % 2].claim(task, _device(i // 2), clock()) for i in range(60))))

    try:
        outcomes = list(zip([i // 2 for i in range(60)], asyncio.run(check_ins()), strict=True))
    finally:
        for q in queues:
            q.close()
        other.dispose()
    won = [(device, o) for device, o in outcomes if isinstance(o, Assignment)]
    assert len(won) == 20
    assert len({device for device, _ in won}) == 20  # no device twice
    assert {o for _, o in outcomes if isinstance(o, str)} <= {ROUND_FULL, ALREADY_ASSIGNED}
    assert sorted(a.seed for _, a in won) == sorted(session_seed(task.config.seed, 0, i) for i in range(1, 21))
    assert _counts(db) == (20, 20)
    with db.read() as conn:
        round_id = conn.execute(sa.select(rounds.c.id)).scalar_one()
        stored = set(conn.execute(sa.select(sessions.c.participant)).scalars())
    assert stored == {participant(round_id, _device(device).device_id) for device, _ in won}


def test_claim_queue_falls_back_to_the_unique_key(db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the held-check missed a session, the (round, participant) key refuses the second one: nothing counted."""
    task = _open_round(db, clock)
    queue = ClaimQueue(db)
    try:
        assert isinstance(_claims(queue, task, [1], clock)[0], Assignment)
        blind = sa.select(sessions.c.participant).where(
            sa.false(),
            sessions.c.round_id == sa.bindparam("round_id"),
            sessions.c.participant.in_(sa.bindparam("keys", expanding=True)),
        )
        monkeypatch.setattr(claims_module, "_HELD", blind)
        assert _claims(queue, task, [1, 1], clock) == [ALREADY_ASSIGNED, ALREADY_ASSIGNED]
        assert isinstance(_claims(queue, task, [2], clock)[0], Assignment)
    finally:
        queue.close()
    assert _counts(db) == (2, 2)


def test_claim_queue_restarts_after_close(db: Database, clock: Clock) -> None:
    task = _open_round(db, clock)
    queue = ClaimQueue(db)
    devices = itertools.count()
    for _ in range(2):
        assert isinstance(_claims(queue, task, [next(devices)], clock)[0], Assignment)
        queue.close()
    assert _counts(db) == (2, 2)


def test_claim_queue_refuses_a_held_claimant_and_assigns_the_rest_of_its_batch(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch is first written without the held-check; the unique key refuses it, and it is written again."""
    task = _open_round(db, clock)  # target 4
    queue = ClaimQueue(db, linger_seconds=0.2)  # the three claims below share a batch
    try:
        assert isinstance(_claims(queue, task, [1], clock)[0], Assignment)
        with caplog.at_level(logging.INFO, logger="coordinator.claims"):
            out = _claims(queue, task, [2, 1, 3], clock)
    finally:
        queue.close()
    assert isinstance(out[0], Assignment) and isinstance(out[2], Assignment)
    assert out[1] == ALREADY_ASSIGNED
    assert _counts(db) == (3, 3)
    (line,) = [r for r in caplog.records if r.getMessage().startswith("assigned ")]  # one line a batch
    fields = line.fields  # type: ignore[attr-defined]
    assert (fields["population"], fields["round"], fields["count"]) == ("p", 0, 2)
    assert fields["sessions"] == ",".join(session_ref(a.session_id) for a in (out[0], out[2]))


def test_claim_queue_answers_awaiting_check_ins_on_their_loop(db: Database, clock: Clock) -> None:
    task = _open_round(db, clock)  # target 4
    queue = ClaimQueue(db)
    try:
        out = _claims(queue, task, list(range(6)), clock)
    finally:
        queue.close()
    assert [isinstance(o, Assignment) for o in out].count(True) == 4
    assert out.count(ROUND_FULL) == 2
    assert _counts(db) == (4, 4)
