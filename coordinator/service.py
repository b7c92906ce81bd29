"""The device side of the coordinator: check-in, upload, report, abort, and the round clock.

Composes the pure core (rounds, pace, validation, aggregation) with the
database. Every method takes the time from the injected clock once, so tests
drive deadlines without sleeping. See ``coordinator.db`` for the lock order
(task -> round -> session) that keeps several processes consistent.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import sqlalchemy as sa

from coordinator.aggregators import for_task
from coordinator.arrivals import DbArrivalStore, process_name
from coordinator.clock import needs_write, tick_task
from coordinator.credentials import participant
from coordinator.db import ROUND_FIELDS, Database, rounds, sessions, tasks
from coordinator.enrollment import Enrollment
from coordinator.errors import CoordinatorRefusal, SessionError, UpdateRejected
from coordinator.gatekeeper import (
    UNAUTHENTICATED,
    Action,
    SessionRecord,
    admit,
    authorize,
    declared_weight_bound,
    permit,
)
from coordinator.lifecycle import add_counts
from coordinator.logs import event, session_ref
from coordinator.metrics import Metrics
from coordinator.pace import PaceConfig, PaceInputs, PopulationArrivals, retry_window, unavailable_window
from coordinator.partials import RoundPartials
from coordinator.records import (
    TaskRow,
    all_task_ids,
    load_round,
    load_session,
    load_task,
    load_task_by_id,
    model_sha256,
    round_record,
    token_sha256,
)
from coordinator.reports import record_abort, record_report
from coordinator.rounds import TERMINAL, RoundState, can_assign, check_upload
from coordinator.validation import UpdateLimits, ValidUpdate, decode_and_validate
from wire.codec import round_rotation_seed
from wire.protocol import (
    API_PREFIX,
    AbortRequest,
    Assignment,
    CheckinRequest,
    CheckinResponse,
    EnrollResponse,
    Hyperparameters,
    ReportRequest,
    Resource,
    RetryWindow,
    UploadResponse,
)

logger = logging.getLogger(__name__)

_SEED_SALT = 0x5E55


# The assignment claim: one conditional UPDATE of the task's current round, atomic on every backend.
# (bind names differ from column names: an UPDATE reserves those for its SET clause)
_CURRENT_ROUND = sa.select(tasks.c.current_round).where(tasks.c.id == sa.bindparam("claim_task")).scalar_subquery()
_CLAIM = (
    sa.update(rounds)
    .where(
        rounds.c.task_id == sa.bindparam("claim_task"),
        rounds.c.number == _CURRENT_ROUND,
        rounds.c.state == RoundState.SELECTING.value,
        rounds.c.assigned < rounds.c.target,
        rounds.c.received < rounds.c.goal,
        rounds.c.selection_deadline > sa.bindparam("claim_now"),
    )
    .values(assigned=rounds.c.assigned + 1)
    .returning(rounds.c.id, rounds.c.number, rounds.c.assigned, rounds.c.model_version, rounds.c.report_deadline)
)
_NEW_SESSION = sa.insert(sessions)
# Counting a valid update: one conditional UPDATE, so a round never counts more than its goal.
_COUNT_UPDATE = (
    sa.update(rounds)
    .where(
        rounds.c.id == sa.bindparam("count_round"),
        rounds.c.state.in_([RoundState.SELECTING.value, RoundState.REPORTING.value]),
        rounds.c.received < rounds.c.goal,
        rounds.c.report_deadline > sa.bindparam("count_now"),
    )
    .values(received=rounds.c.received + 1, weight_sum=rounds.c.weight_sum + sa.bindparam("count_weight"))
    .returning(rounds.c.received, rounds.c.goal)
)
# The upload path's statements (built once, like the check-in path's below).
_ROUND_BY_ID = sa.select(*ROUND_FIELDS).where(rounds.c.id == sa.bindparam("upload_round"))
_MARK_UPLOADED = sa.update(sessions).where(sessions.c.id == sa.bindparam("upload_session")).values(state="uploaded")


@dataclasses.dataclass(frozen=True)
class UploadAdmission:
    """An upload whose session, token and round were checked before its body was read (``admit_upload``).

    Carries the rows it was admitted on, so receiving the body reads nothing again; what can change
    meanwhile is checked again (the clock in ``_check_admission``, the round and session in ``_add_update``).
    """

    session_id: str
    token: str | None = dataclasses.field(repr=False)
    session: SessionRecord
    round_row: sa.Row[Any]
    task: TaskRow
    limits: UpdateLimits

    @property
    def max_bytes(self) -> int:
        """The body's size bound (the task's and the server's)."""
        return self.limits.max_bytes


# Built once (the check-in path runs them on every request; building a statement costs more than running it).
_HAS_SESSION = (
    sa.select(sessions.c.id)
    .where(sessions.c.round_id == sa.bindparam("has_round"), sessions.c.participant == sa.bindparam("has_participant"))
    .limit(1)
)
_RECENT_DURATIONS = (
    sa.select(rounds.c.closed_at - rounds.c.opened_at)
    .where(rounds.c.task_id == sa.bindparam("recent_task"), rounds.c.closed_at.is_not(None))
    .order_by(rounds.c.number.desc())
    .limit(5)
)


def _has_session(conn: sa.Connection, round_id: int, device_id: str) -> bool:
    """Whether the device already holds a session of the round (an index lookup; the unique key decides)."""
    key = participant(round_id, device_id)
    return conn.execute(_HAS_SESSION, {"has_round": round_id, "has_participant": key}).first() is not None


def blob_url(digest: str) -> str:
    """Blob URLs are relative to the coordinator's base URL."""
    return f"{API_PREFIX}/blobs/{digest}"


class Coordinator:
    """What devices can do (check in, upload, report, abort) and the round clock, over one database.

    Stateless apart from check-in counts not yet shared (at most a second's, ``pace.PopulationArrivals``): any
    number of instances in any number of processes on any number of hosts can serve the same database.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        metrics: Metrics,
        pace: PaceConfig,
        enrollment: Enrollment,
        workers: int = 1,
        max_upload_bytes: int = 256 * 2**20,
        partials: RoundPartials | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.pace = pace
        self.enrollment = enrollment
        self.max_upload_bytes = max_upload_bytes
        del workers  # the arrival rate is the population's, shared through the database, not scaled per worker
        self._arrivals = PopulationArrivals(DbArrivalStore(db, process_name()))
        self.partials = RoundPartials() if partials is None else partials  # this process's share of open sums

    # ------------------------------------------------------------------ check-in

    def checkin(self, population: str, req: CheckinRequest) -> CheckinResponse:
        with self.metrics.handler_seconds.labels("checkin").time():
            return self._checkin(population, req)

    def enroll(self, population: str, enroll_key: str | None, address: str) -> EnrollResponse:
        """A credential for a device of ``population``, behind the enrollment guard (``coordinator.enrollment``)."""
        now = self.clock()
        self.enrollment.admit_enrollment(enroll_key, address, now)
        with self.db.read() as conn:
            if load_task(conn, population) is None:
                raise SessionError("unknown_population", f"no population {population!r}")
        token, cred = self.enrollment.issue(population, now)
        self.metrics.checkins.labels("enrolled", "").inc()
        return EnrollResponse(credential=token, expires_unix=cred.expires_at)

    def _checkin(self, population: str, req: CheckinRequest) -> CheckinResponse:
        now = self.clock()
        try:  # the credential and its rate limit first: no database access for a refused or too-frequent device
            cred, verdict = self.enrollment.check(req.credential, population, now)
        except SessionError as err:
            self.metrics.checkins.labels("rejected", err.reason).inc()
            raise
        if not verdict.allowed:
            wait = max(verdict.retry_after, self.pace.min_retry_seconds)
            return self._reject("checkin_too_soon", (wait, 2 * wait))
        with self.db.read() as conn:
            task = load_task(conn, population)
            current = None if task is None else load_round(conn, task.id, task.current_round)
            joined = current is not None and _has_session(conn, current._mapping["id"], cred.device_id)
        if task is None:
            return self._reject("unknown_population", unavailable_window(self.pace))
        self._arrivals.observe(task.id, now)
        if task.finished or task.paused:
            return self._reject("finished" if task.finished else "paused", unavailable_window(self.pace))
        if task.config.codec not in req.codecs:
            return self._reject("codec", unavailable_window(self.pace))
        if req.example_count < 1 or req.token_count == 0:  # nothing to train on: its weight bound would be 0
            return self._reject("no_examples", unavailable_window(self.pace))
        if needs_write(task, current, now):  # a deadline passed or no round is open: move the clock first
            self.tick_task(task.id, now)
            with self.db.read() as conn:
                current = load_round(conn, task.id, load_task_by_id(conn, task.id).current_round)
                joined = current is not None and _has_session(conn, current._mapping["id"], cred.device_id)
        if joined:  # this credential already holds a session of the open round: one slot per device
            return self._reject(
                "already_assigned", self._retry_window(task, now, self._arrivals.rate(task.id), current)
            )
        # Only a round that looks open is worth a write; the conditional UPDATE is what decides.
        open_now = current is not None and can_assign(round_record(current), now)
        bound = declared_weight_bound(
            plan_max=task.max_weight,
            local_epochs=task.config.local_epochs,
            seq_len=task.seq_len,
            example_count=req.example_count,
            token_count=req.token_count,
        )
        try:
            assignment = self._try_assign(task, now, cred.device_id, bound) if open_now else None
        except sa.exc.IntegrityError:  # a concurrent check-in with the same credential won the round's slot
            return self._reject(
                "already_assigned", self._retry_window(task, now, self._arrivals.rate(task.id), current)
            )
        if assignment is None:
            return self._reject("round_full", self._retry_window(task, now, self._arrivals.rate(task.id), current))
        self.metrics.checkins.labels("accepted", "").inc()
        event(
            logger,
            "assigned",
            population=population,
            round=assignment.round,
            session=session_ref(assignment.session_id),
        )
        return CheckinResponse(outcome="accepted", assignment=assignment)

    def _reject(self, reason: str, window: tuple[float, float]) -> CheckinResponse:
        self.metrics.checkins.labels("rejected", reason).inc()
        return CheckinResponse(
            outcome="rejected",
            reason=reason,
            retry_window=RetryWindow(min_seconds=round(window[0], 3), max_seconds=round(window[1], 3)),
        )

    def _try_assign(self, task: TaskRow, now: float, device_id: str, max_weight: float) -> Assignment | None:
        session_id = secrets.token_urlsafe(18)
        token = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            row = conn.execute(
                _CLAIM, {"claim_task": task.id, "claim_now": now}
            ).first()  # never more than `target` claims
            if row is None:
                return None
            round_id, number, index, version, deadline = row
            c = task.config
            seed = int(np.random.SeedSequence([c.seed, _SEED_SALT, number, index]).generate_state(1)[0])
            session = {
                "id": session_id,
                "round_id": round_id,
                "token_sha256": token_sha256(token),
                "participant": participant(round_id, device_id),
                "max_weight": max_weight,
            }
            conn.execute(
                _NEW_SESSION, session | {"state": "assigned", "reported": False, "seed": seed, "deadline": deadline}
            )
            checkpoint = model_sha256(conn, task.id, version)
            secure = for_task(task).assign(conn, task, round_id, number, session_id, index - 1)
        return Assignment(
            session_id=session_id,
            population=task.population,
            task=task.name,
            round=number,
            model_version=version,
            plan=Resource(url=blob_url(c.plan_sha256), sha256=c.plan_sha256),
            checkpoint=Resource(url=blob_url(checkpoint), sha256=checkpoint),
            upload_token=token,
            deadline_unix=deadline,
            hyperparameters=Hyperparameters.of(c.training),  # batch size and seq_len: the plan's manifest
            codec=c.codec,
            clip_norm=c.client_clip_norm,
            seed=seed,
            rotation_seed=round_rotation_seed(c.seed, number),
            secure=secure,
        )

    def _retry_window(
        self, task: TaskRow, now: float, arrival_rate: float, current: sa.Row[Any] | None
    ) -> tuple[float, float]:
        """Pace steering from the open round's expected end and recent round durations.

        ``current`` is the open round as the check-in just read it; the durations are read only when it is open.
        """
        durations: list[float] = []
        if current is not None and RoundState(current._mapping["state"]) not in TERMINAL:
            with self.db.read() as conn:
                durations = [float(d) for d in conn.execute(_RECENT_DURATIONS, {"recent_task": task.id}).scalars()]
        plan = task.plan
        if current is None or RoundState(current._mapping["state"]) in TERMINAL:
            to_next = 0.0
        else:
            r = current._mapping
            end = r["report_deadline"]
            if durations:
                end = min(end, r["opened_at"] + statistics.median(durations))
            to_next = max(0.0, end - now)
        inputs = PaceInputs(
            seconds_to_next_selection=to_next,
            next_target=plan.target,
            selection_seconds=plan.selection_seconds,
            arrival_rate=arrival_rate,
        )
        return retry_window(inputs, self.pace)

    # ------------------------------------------------------------------ upload

    def admit_upload(self, session_id: str, token: str | None) -> UploadAdmission:
        """Check session, token and round before the body is read: what the body is then checked against.

        So a client without a valid token cannot make the server read (up to) megabytes, and the body's
        checks (``receive_upload``) need no second read of session, round and task.
        """
        return self._upload_context(session_id, token, self.clock())

    def oversized(self, session_id: str, message: str) -> UpdateRejected:
        """The refusal of a body above the bound (found while streaming it), counted in the session's round.

        Only called after ``admit_upload`` authenticated the session, so the database count is earned.
        """
        err = UpdateRejected("too_large", message)
        with self.db.read() as conn:
            session = load_session(conn, session_id)
        if session is None:
            self._count_unauthenticated(err)
        else:
            self._count_rejection(session._mapping["round_id"], err.reason)
        return err

    def _upload_context(self, session_id: str, token: str | None, now: float) -> UploadAdmission:
        """The gatekeeper's verdict, then the round's: refusals before authentication cost no write."""
        with self.db.read() as conn:
            try:
                s = admit(conn, session_id, token, None)  # authentication only: refusals here are never written
            except SessionError as refused:
                self._count_unauthenticated(refused)
                raise
            round_row = conn.execute(_ROUND_BY_ID, {"upload_round": s.round_id}).one()
            task = load_task_by_id(conn, round_row._mapping["task_id"])
        r = round_row._mapping
        refusal = for_task(task).upload_refusal()
        if refusal is not None:
            self._rejected(task, r, session_id, refusal)
            raise refusal
        admission = UploadAdmission(
            session_id=session_id,
            token=token,
            session=s,
            round_row=round_row,
            task=task,
            limits=UpdateLimits(
                round=r["number"],
                base_version=r["model_version"],
                codec=task.config.codec,
                shapes=task.shapes,
                max_weight=min(task.max_weight, s.max_weight),  # what the device declared at check-in bounds it
                max_bytes=min(task.config.max_update_bytes, self.max_upload_bytes),
                norm_bound=task.config.norm_bound,
                norm_policy=task.config.norm_policy,
                rotation_seed=round_rotation_seed(task.config.seed, r["number"]),
            ),
        )
        self._check_admission(admission, now)
        return admission

    def _check_admission(self, a: UploadAdmission, now: float) -> None:
        """The session's state and the round's clock as of ``now`` (pure: the admission's rows are not re-read).

        What may have changed in the database since the admission (the round filled or closed, a replay
        used the token) the upload's transaction finds (``_add_update``).
        """
        try:
            permit(a.session, Action.UPLOAD)
            check_upload(round_record(a.round_row), now, a.session.deadline)
        except CoordinatorRefusal as err:
            self._rejected(a.task, a.round_row._mapping, a.session_id, err)
            raise

    def _count_unauthenticated(self, err: CoordinatorRefusal) -> None:
        """A refusal of a request that proved nothing: process metrics only, never a database write."""
        self.metrics.uploads.labels("rejected").inc()
        self.metrics.rejections.labels(err.reason).inc()

    def _rejected(self, task: TaskRow, r: sa.RowMapping, session_id: str, err: CoordinatorRefusal) -> None:
        if err.reason in UNAUTHENTICATED:
            self._count_unauthenticated(err)
        else:
            self._count_rejection(r["id"], err.reason)  # authenticated: worth a write in the round's counts
        event(
            logger,
            "upload_rejected",
            logging.WARNING,
            population=task.population,
            round=r["number"],
            session=session_ref(session_id),
            reason=err.reason,
        )

    def upload(self, session_id: str, token: str | None, body: bytes) -> UploadResponse:
        """Admit and receive in one call (for a body already in memory)."""
        return self.receive_upload(self.admit_upload(session_id, token), body)

    def receive_upload(self, admission: UploadAdmission, body: bytes) -> UploadResponse:
        """Validate the body of an admitted upload and count and add it (``UpdateRejected`` if refused)."""
        with self.metrics.handler_seconds.labels("upload").time():
            return self._receive(admission, body)

    def _receive(self, a: UploadAdmission, body: bytes) -> UploadResponse:
        now = self.clock()
        self._check_admission(a, now)  # the body took time to arrive: the deadlines, again
        r, task = a.round_row._mapping, a.task
        try:
            valid = decode_and_validate(body, a.limits)  # CPU work outside any transaction
            received = self._add_update(task, r["id"], a.session_id, a.token, valid, now)
        except CoordinatorRefusal as err:
            self._rejected(task, r, a.session_id, err)
            raise
        self.metrics.uploads.labels("accepted").inc()
        self.metrics.upload_bytes.inc(len(body))
        event(
            logger,
            "upload_accepted",
            population=task.population,
            round=r["number"],
            session=session_ref(a.session_id),
            weight=valid.weight,
            norm=round(valid.norm, 6),
            clipped=valid.clipped,
            bytes=len(body),
        )
        return UploadResponse(
            session_id=a.session_id, round=r["number"], clipped=valid.clipped, received=received, goal=r["goal"]
        )

    @staticmethod
    def _check_session(s: sa.RowMapping, token: str | None) -> None:
        """The gatekeeper's upload rule on a (locked) session row: a concurrent replay loses here."""
        authorize(SessionRecord.of(s), token, Action.UPLOAD, s["id"])

    def _add_update(
        self, task: TaskRow, round_id: int, session_id: str, token: str | None, valid: ValidUpdate, now: float
    ) -> int:
        """Count a valid update in the round and add it to this process's in-memory partial sum.

        The transaction writes counters only (round, this process's partial row, session), never the sum
        (``coordinator.partials``: nothing on disk may differ from an earlier write by one update). The add
        runs after the count committed, outside any transaction, and ``begin`` made a commit in this process
        wait for it. Reaching the goal ticks the round clock, which gathers the partials and commits.
        """
        added = 1.0 if task.config.dp_noise_multiplier > 0 else valid.weight  # DP-FedAvg weighs devices uniformly
        begun = False
        try:
            with self.db.write() as conn:
                params = {"count_round": round_id, "count_now": now, "count_weight": added}
                counted = conn.execute(_COUNT_UPDATE, params).first()  # never more than `goal` succeed
                if counted is None:  # closed, full or past its deadline meanwhile: say which, roll back
                    record = round_record(conn.execute(_ROUND_BY_ID, {"upload_round": round_id}).one())
                    check_upload(record, now, record.report_deadline)
                    raise UpdateRejected("round_closed", f"round is full ({record.received}/{record.goal})")
                session = load_session(conn, session_id, lock=True)
                if session is None:
                    raise UpdateRejected("unknown_session", f"no session {session_id!r}")
                self._check_session(session._mapping, token)  # a concurrent replay loses here
                conn.execute(_MARK_UPLOADED, {"upload_session": session_id})
                self.partials.begin(conn, task.id, round_id, added, now)
                begun = True
                received, goal = counted
        except BaseException:
            if begun:
                self.partials.cancel(round_id)
            raise
        self.partials.add(round_id, task.shapes, valid.message, added, valid.scale)
        if received >= goal:
            self.tick_task(task.id, now)
        return int(received)

    def _count_rejection(self, round_id: int, reason: str) -> None:
        self.metrics.uploads.labels("rejected").inc()
        self.metrics.rejections.labels(reason).inc()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(rounds.c.rejections).where(rounds.c.id == round_id).with_for_update()
            ).scalar_one()
            conn.execute(
                sa.update(rounds).where(rounds.c.id == round_id).values(rejections=add_counts(row, {reason: 1}))
            )

    # ------------------------------------------------------------------ report / abort

    def report(self, session_id: str, token: str | None, req: ReportRequest) -> None:
        record_report(self.db, self.metrics, session_id, token, req)

    def abort(self, session_id: str, token: str | None, req: AbortRequest) -> None:
        record_abort(self.db, self.metrics, session_id, token, req)

    # ------------------------------------------------------------------ the round clock

    def tick(self) -> None:
        """Move every task's open round along (deadlines) and open rounds where needed; idempotent."""
        now = self.clock()
        self.partials.heartbeat(self.db, now)
        for task_id in all_task_ids(self.db):
            self.tick_task(task_id, now)

    def tick_task(self, task_id: int, now: float) -> None:
        tick_task(self.db, self.metrics, self.partials, task_id, now)
