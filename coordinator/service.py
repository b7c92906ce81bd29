"""The device side of the coordinator: check-in, upload, report, abort, and the round clock.

Composes the pure core (rounds, pace, validation, aggregation) with the
database. Every method takes the time from the injected clock once, so tests
drive deadlines without sleeping. See ``coordinator.db`` for the lock order
(task -> round -> session) that keeps several processes consistent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from coordinator.aggregators import for_task
from coordinator.checkin import Checkins
from coordinator.checkin_views import MAX_AGE_SECONDS
from coordinator.clock import tick_task
from coordinator.db import ROUND_FIELDS, Database, rounds, sessions
from coordinator.enrollment import Enrollment
from coordinator.errors import CoordinatorRefusal, SessionError, UpdateRejected
from coordinator.gatekeeper import UNAUTHENTICATED, Action, SessionRecord, admit, authorize, permit
from coordinator.lifecycle import add_counts
from coordinator.logs import event, session_ref
from coordinator.metrics import Metrics
from coordinator.pace import PaceConfig
from coordinator.partials import RoundPartials
from coordinator.records import TaskRow, all_task_ids, load_session, load_task, load_task_by_id, round_record
from coordinator.reports import record_abort, record_report
from coordinator.rounds import RoundState, check_upload
from coordinator.validation import UpdateLimits, ValidUpdate, decode_and_validate
from wire.codec import round_rotation_seed
from wire.protocol import (
    AbortRequest,
    CheckinRequest,
    CheckinResponse,
    EnrollResponse,
    ReportRequest,
    UploadResponse,
)

logger = logging.getLogger(__name__)

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


class Coordinator:
    """What devices can do (check in, upload, report, abort) and the round clock, over one database.

    Stateless apart from check-in counts not yet shared (at most a second's, ``pace.PopulationArrivals``) and
    the check-in's view of tasks and rounds (``checkin_views``, at most ``checkin_view_seconds`` old): any
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
        checkin_view_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.pace = pace
        self.enrollment = enrollment
        self.max_upload_bytes = max_upload_bytes
        del workers  # the arrival rate is the population's, shared through the database, not scaled per worker
        self._checkins = Checkins(
            db,
            clock=clock,
            metrics=metrics,
            pace=pace,
            enrollment=enrollment,
            tick=self.tick_task,
            view_seconds=checkin_view_seconds,
        )
        self.partials = RoundPartials() if partials is None else partials  # this process's share of open sums
        self._checkin_seconds = metrics.handler_seconds.labels("checkin")  # looked up once: every check-in times

    # ------------------------------------------------------------------ check-in

    async def checkin(self, population: str, req: CheckinRequest) -> CheckinResponse:
        """An assignment or a refusal with a retry window (``coordinator.checkin``), on the caller's event loop."""
        start = time.perf_counter()
        try:
            return await self._checkins.checkin(population, req)
        finally:
            self._checkin_seconds.observe(time.perf_counter() - start)

    def close(self) -> None:
        """Stop the check-in's threads (the claim writer and the views' reader); they start again when needed."""
        self._checkins.close()

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
