"""Assignment claims: every check-in's claim of a round slot, written in batches by one thread (group commit).

Bonawitz et al. 2019 (§2.2): a round selects devices as they check in until it has its target. A claim is
one more ``assigned`` on the round row and a session row. Written one transaction a check-in (BEGIN, the
claim, the session, COMMIT), the assign path cost more in transactions than in anything else; here one
thread per coordinator process writes all claims, and the claims that arrive together go into one
transaction.

The thread gathers the claims that arrive within ``LINGER_SECONDS`` (5 ms) of the first (group commit), then
writes them. A batch of one task, in one write transaction: lock the task's current round row (``FOR UPDATE``; on
SQLite ``BEGIN IMMEDIATE`` holds off every other writer), find which claimants already hold a session of
it (one session per credential per round), let ``rounds.grant`` say how many of the others the round takes,
then one conditional UPDATE adds them to ``assigned`` on the condition that the round is still as read
(same ``assigned``, selecting, before its selection deadline, under its goal, and ``assigned + n <=
target``), and the sessions are inserted. That UPDATE decides: it never lets a round pass its target,
whatever any other process does at the same time; the unique key (round, participant) still backs one
session per credential per round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import secrets
import threading
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregators import for_task
from coordinator.credentials import participant
from coordinator.db import ROUND_FIELDS, Database, rounds, sessions, tasks
from coordinator.logs import event, session_ref
from coordinator.records import TaskRow, model_sha256, round_record, token_sha256
from coordinator.rounds import RoundState, grant
from coordinator.seed_words import first_seed_word
from wire.codec import round_rotation_seed
from wire.protocol import API_PREFIX, Assignment, Hyperparameters, Resource

logger = logging.getLogger(__name__)

ALREADY_ASSIGNED = "already_assigned"  # the credential holds a session of the round already
ROUND_FULL = "round_full"  # no slot: the round is full, not selecting, or past its selection deadline
# How long the claim thread gathers claims after the first before it writes them: at most this much on an
# assignment's latency, for a transaction per batch instead of per claim. In-process, 64 concurrent check-ins:
# with no wait batches were ~6 claims on average, 2 ms gathered ~12, 5 ms ~25 at ~15% less CPU a claim. Served
# over HTTP (bench/checkin_wrk.py, 64 connections) 2 ms answered more check-ins a second than 5 ms or none,
# on SQLite and PostgreSQL: the wait is spent by every claim of the batch, and the closed loop of devices
# waiting for their answers sends no new claims meanwhile.
LINGER_SECONDS = 0.002
_SEED_SALT = 0x5E55


@dataclasses.dataclass(frozen=True)
class Claim:
    """One check-in's claim of a slot: the enrolled device (credential id) and the FedAvg weight bound it
    declared (``gatekeeper.declared_weight_bound``)."""

    device_id: str
    max_weight: float


ClaimOutcome = Assignment | str  # the assignment, or why none (ALREADY_ASSIGNED, ROUND_FULL)

_CURRENT_ROUND = sa.select(tasks.c.current_round).where(tasks.c.id == sa.bindparam("task_id")).scalar_subquery()
_LOCK_ROUND = (
    sa.select(*ROUND_FIELDS)
    .where(rounds.c.task_id == sa.bindparam("task_id"), rounds.c.number == _CURRENT_ROUND)
    .with_for_update()
)
_HELD = sa.select(sessions.c.participant).where(
    sessions.c.round_id == sa.bindparam("round_id"), sessions.c.participant.in_(sa.bindparam("keys", expanding=True))
)
# The deciding statement. Bind names differ from column names: an UPDATE reserves those for its SET clause.
_CLAIM = (
    sa.update(rounds)
    .where(
        rounds.c.id == sa.bindparam("claim_round"),
        rounds.c.assigned == sa.bindparam("claim_seen"),
        rounds.c.state == RoundState.SELECTING.value,
        rounds.c.assigned + sa.bindparam("claim_n") <= rounds.c.target,
        rounds.c.received < rounds.c.goal,
        rounds.c.selection_deadline > sa.bindparam("claim_now"),
    )
    .values(assigned=rounds.c.assigned + sa.bindparam("claim_n"))
    .returning(rounds.c.assigned)
)
_NEW_SESSIONS = sa.insert(sessions)


def session_seed(task_seed: int, round_number: int, index: int) -> int:
    """The seed of the ``index``-th session (1-based) of a round: its upload's stochastic rounding (onto the
    codec's levels, or the secure ring); training rows are ordered by the task's seed, not this one.

    ``np.random.SeedSequence([task_seed, salt, round_number, index]).generate_state(1)[0]``, computed without
    numpy's objects (``seed_words``): one per assignment on the claim thread.
    """
    return first_seed_word((task_seed, _SEED_SALT, round_number, index))


def blob_url(digest: str) -> str:
    """Blob URLs are relative to the coordinator's base URL."""
    return f"{API_PREFIX}/blobs/{digest}"


def claim_batch(
    conn: Connection,
    task: TaskRow,
    claims: Sequence[Claim],
    now: float,
    checkpoints: MutableMapping[tuple[int, int], str] | None = None,
    *,
    check_held: bool = True,
) -> list[ClaimOutcome]:
    """Claims of ``task``'s current round, in order, inside the caller's write transaction.

    The first claim of each credential without a session in the round is a candidate; the round takes the
    first ``grant`` candidates, the rest are ROUND_FULL, a credential seen before ALREADY_ASSIGNED.
    ``checkpoints`` caches each (task, model version)'s checkpoint digest, which never changes once written.

    ``check_held=False`` skips the read of which claimants hold a session already, and leaves it to the
    unique key (round, participant): a batch with such a claimant raises ``IntegrityError`` at the sessions'
    INSERT, and the caller rolls it back and writes it again with the check (``ClaimQueue``). A device that
    checks in again in a round it holds a session of is rare; the read was a statement every batch (and on
    PostgreSQL, before the table has statistics, a scan of the round's sessions).
    """
    row = conn.execute(_LOCK_ROUND, {"task_id": task.id}).first()
    outcomes: list[ClaimOutcome] = [ROUND_FULL] * len(claims)
    if row is None or not claims:
        return outcomes
    r = row._mapping
    keys = [participant(r["id"], c.device_id) for c in claims]
    held = set(conn.execute(_HELD, {"round_id": r["id"], "keys": sorted(set(keys))}).scalars()) if check_held else set()
    candidates: list[int] = []
    for i, key in enumerate(keys):
        if key in held:
            outcomes[i] = ALREADY_ASSIGNED
        else:
            held.add(key)
            candidates.append(i)
    n = grant(round_record(row), now, len(candidates))
    params = {"claim_round": r["id"], "claim_seen": r["assigned"], "claim_n": n, "claim_now": now}
    if n == 0 or conn.execute(_CLAIM, params).first() is None:
        return outcomes
    winners = candidates[:n]
    assignments = _assign(conn, task, r, [(claims[i], keys[i]) for i in winners], checkpoints)
    for i, assignment in zip(winners, assignments, strict=True):
        outcomes[i] = assignment
    return outcomes


def _checkpoint(
    conn: Connection, task_id: int, version: int, cache: MutableMapping[tuple[int, int], str] | None
) -> str:
    if cache is None:
        return model_sha256(conn, task_id, version)
    found = cache.get((task_id, version))
    if found is None:
        found = cache[(task_id, version)] = model_sha256(conn, task_id, version)
    return found


def _assign(
    conn: Connection,
    task: TaskRow,
    r: sa.RowMapping,
    winners: list[tuple[Claim, str]],
    checkpoints: MutableMapping[tuple[int, int], str] | None,
) -> list[Assignment]:
    """Insert the winners' sessions (assignment order ``assigned + 1 ...``) and build their assignments."""
    c = task.config
    number, version, deadline = r["number"], r["model_version"], r["report_deadline"]
    tokens = [(secrets.token_urlsafe(18), secrets.token_urlsafe(32)) for _ in winners]
    seeds = [session_seed(c.seed, number, r["assigned"] + j + 1) for j in range(len(winners))]
    rows: list[dict[str, Any]] = [
        {
            "id": session_id,
            "round_id": r["id"],
            "token_sha256": token_sha256(token),
            "participant": key,
            "max_weight": claim.max_weight,
            "state": "assigned",
            "reported": False,
            "seed": seed,
            "deadline": deadline,
        }
        for (claim, key), (session_id, token), seed in zip(winners, tokens, seeds, strict=True)
    ]
    conn.execute(_NEW_SESSIONS, rows)
    checkpoint = _checkpoint(conn, task.id, version, checkpoints)
    aggregator = for_task(task)
    first = Assignment(  # validated once a batch; the others differ in what is generated here (model_copy)
        session_id=tokens[0][0],
        population=task.population,
        task=task.name,
        round=number,
        model_version=version,
        plan=Resource(url=blob_url(c.plan_sha256), sha256=c.plan_sha256),
        checkpoint=Resource(url=blob_url(checkpoint), sha256=checkpoint),
        upload_token=tokens[0][1],
        deadline_unix=deadline,
        hyperparameters=Hyperparameters.of(c.training),  # batch size and seq_len: the plan's manifest
        codec=c.codec,
        clip_norm=c.client_clip_norm,
        seed=seeds[0],
        rotation_seed=round_rotation_seed(c.seed, number),
    )
    out = []
    for j, ((session_id, token), seed) in enumerate(zip(tokens, seeds, strict=True)):
        secure = aggregator.assign(conn, task, r["id"], number, session_id, r["assigned"] + j)
        generated = {"session_id": session_id, "upload_token": token, "seed": seed, "secure": secure}
        out.append(first.model_copy(update=generated))
    return out


class _Pending:
    """A queued claim and where its outcome goes: an asyncio future of ``loop``, settled with the batch's other
    futures of that loop in one callback."""

    __slots__ = ("claim", "future", "loop", "now", "task")

    def __init__(
        self,
        task: TaskRow,
        claim: Claim,
        now: float,
        future: asyncio.Future[ClaimOutcome],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.task, self.claim, self.now, self.future, self.loop = task, claim, now, future, loop

    def start(self) -> bool:
        """False if the caller went away before the batch is written: the claim is dropped."""
        return not self.future.cancelled()


def _log_assigned(task: TaskRow, outcomes: Sequence[ClaimOutcome]) -> None:
    """One ``assigned`` line for a committed batch (one a check-in cost the event loop a write each)."""
    won = [o for o in outcomes if isinstance(o, Assignment)]
    if won and logger.isEnabledFor(logging.INFO):
        event(
            logger,
            "assigned",
            population=task.population,
            round=won[0].round,
            count=len(won),
            sessions=",".join(session_ref(a.session_id) for a in won),
        )


_Settled = tuple[asyncio.Future[ClaimOutcome], ClaimOutcome | BaseException]  # a check-in's future, its outcome


def _settle_async(results: list[_Settled]) -> None:
    """On the event loop: hand each waiting check-in its outcome (one callback for a batch's check-ins)."""
    for future, result in results:
        if future.done():  # cancelled meanwhile (the client went away)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class ClaimQueue:
    """The one thread of a process that writes assignment claims, a transaction per batch and task.

    ``claim`` is awaited on an event loop: the thread wakes each loop once a batch (``call_soon_threadsafe``),
    not once a claim. A claim whose caller went away before its batch is written (its future cancelled) is dropped.
    """

    def __init__(self, db: Database, *, max_batch: int = 512, linger_seconds: float = LINGER_SECONDS) -> None:
        if max_batch < 1 or linger_seconds < 0:
            raise ValueError(f"need max_batch >= 1 and linger_seconds >= 0, got {max_batch}, {linger_seconds}")
        self._db = db
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._checkpoints: dict[tuple[int, int], str] = {}  # (task, version) -> checkpoint digest (immutable)

    async def claim(self, task: TaskRow, claim: Claim, now: float) -> ClaimOutcome:
        """The claim's outcome, awaited on the running loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ClaimOutcome] = loop.create_future()
        self._put(_Pending(task, claim, now, future, loop))
        return await future

    def _put(self, pending: _Pending) -> None:
        self._queue.put(pending)
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="checkin-claims", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        """Write what is queued, then stop the thread (a later ``claim`` starts it again)."""
        with self._starting:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
                thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            until = time.monotonic() + self._linger  # the claims of the next moment share the transaction
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            by_task: dict[int, list[_Pending]] = {}
            for p in batch:
                if p.start():
                    by_task.setdefault(p.task.id, []).append(p)
            results: list[tuple[_Pending, ClaimOutcome | BaseException]] = []
            for pending in by_task.values():
                results.extend(self._settle(pending))
            self._deliver(results)

    @staticmethod
    def _deliver(results: list[tuple[_Pending, ClaimOutcome | BaseException]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for p, result in results:
            by_loop.setdefault(p.loop, []).append((p.future, result))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_async, settled)
            except RuntimeError:  # the loop closed: nobody waits for these any more
                logger.debug("event loop closed before %d claim outcomes were delivered", len(settled))

    def _settle(self, pending: list[_Pending]) -> list[tuple[_Pending, ClaimOutcome | BaseException]]:
        try:
            try:
                outcomes = self._write(pending, check_held=False)
            except sa.exc.IntegrityError:  # a claimant holds a session of the round: again, with the held-check
                outcomes = self._write(pending)
        except sa.exc.IntegrityError:  # a session key the held-check missed (cannot under the row lock): singly
            return [(p, self._settle_one(p)) for p in pending]
        except Exception as err:  # the database is away: every check-in of the batch fails, none was assigned
            logger.warning("writing %d assignment claims failed: %s", len(pending), err)
            return [(p, err) for p in pending]
        _log_assigned(pending[-1].task, outcomes)
        return list(zip(pending, outcomes, strict=True))

    def _settle_one(self, p: _Pending) -> ClaimOutcome | BaseException:
        try:
            outcome = self._write([p])[0]
            _log_assigned(p.task, [outcome])
            return outcome
        except sa.exc.IntegrityError:  # the unique key (round, participant) refused a second session
            return ALREADY_ASSIGNED
        except Exception as err:
            return err

    def _write(self, pending: list[_Pending], *, check_held: bool = True) -> list[ClaimOutcome]:
        now = max(p.now for p in pending)  # the latest check-in's clock: the strictest for the deadlines
        claims = [p.claim for p in pending]
        # The check-in reads the outcomes, not a new view. Claims are soft state: they need not wait for the
        # database's disk flush, which on PostgreSQL was most of an assignment's latency and all of its tail.
        with self._db.write(changes_state=False, durable=False) as conn:
            return claim_batch(conn, pending[-1].task, claims, now, self._checkpoints, check_held=check_held)
