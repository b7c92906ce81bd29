"""The check-in: an assignment, or a refusal with the retry window pace steering chose, answered on the event loop.

What each answer costs. A refusal is decided in memory: the credential's MAC and its rate limit
(``coordinator.enrollment``), the population's view of its task and round (``coordinator.checkin_views``,
read again a few times a second), pace steering (``coordinator.pace``) over the arrival rate this process
counts; no database round trip and no thread hop. An assignment is one claim in the next batch of the
process's claim thread (``coordinator.claims``): one transaction for all the check-ins that arrived while the
previous one was written. Once a second one check-in also shares the arrival counts (``fk_arrivals``) on
a thread of their own before it answers: not the views' thread, where a read of the views (which every
check-in may wait for) would queue behind a write that waits for SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from coordinator.arrivals import DbArrivalStore, process_name
from coordinator.checkin_views import MAX_AGE_SECONDS, CheckinViews, PopulationView
from coordinator.claims import ROUND_FULL, Claim, ClaimQueue
from coordinator.db import Database
from coordinator.enrollment import Enrollment
from coordinator.errors import SessionError
from coordinator.gatekeeper import declared_weight_bound
from coordinator.metrics import Metrics
from coordinator.pace import PaceConfig, PaceInputs, PopulationArrivals, retry_window, unavailable_window
from coordinator.records import TaskRow
from coordinator.rounds import can_assign
from wire.protocol import Assignment, CheckinRequest, CheckinResponse, RetryWindow

logger = logging.getLogger(__name__)


def refusal(task: TaskRow, req: CheckinRequest) -> str | None:
    """Why the population has no work for this device whatever its round is in (None: it may have)."""
    if task.finished:
        return "finished"
    if task.paused:
        return "paused"
    if task.config.codec not in req.codecs:
        return "codec"
    if req.example_count < 1 or req.token_count == 0:  # nothing to train on: its weight bound would be 0
        return "no_examples"
    return None


def steer(view: PopulationView, now: float, arrival_rate: float, pace: PaceConfig) -> tuple[float, float]:
    """The retry window of a device the population's open round (or the next) cannot take now."""
    plan = view.task.plan
    inputs = PaceInputs(
        seconds_to_next_selection=0.0 if view.round_end is None else max(0.0, view.round_end - now),
        next_target=plan.target,
        selection_seconds=plan.selection_seconds,
        arrival_rate=arrival_rate,
    )
    return retry_window(inputs, pace)


class Checkins:
    """Check-ins of one process. Safe to call from any event loop; ``close`` stops its three threads."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        metrics: Metrics,
        pace: PaceConfig,
        enrollment: Enrollment,
        tick: Callable[[int, float], None],
        view_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self.clock = clock
        self.metrics = metrics
        self.pace = pace
        self.enrollment = enrollment
        self.views = CheckinViews(db, tick=tick, max_age=view_seconds)
        self.claims = ClaimQueue(db)
        self._arrivals = PopulationArrivals(DbArrivalStore(db, process_name()))
        self._counters: dict[tuple[str, str], Any] = {}
        self._sharing: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _share_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._sharing is None:
                self._sharing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkin-arrivals")
            return self._sharing

    def close(self) -> None:
        self.claims.close()
        self.views.close()
        with self._lock:
            sharing, self._sharing = self._sharing, None
        if sharing is not None:
            sharing.shutdown(wait=True)

    async def checkin(self, population: str, req: CheckinRequest) -> CheckinResponse:
        now = self.clock()
        try:  # the credential and its rate limit first: nothing else for a refused or too-frequent device
            cred, verdict = self.enrollment.check(req.credential, population, now)
        except SessionError as err:
            self._count("rejected", err.reason)
            raise
        if not verdict.allowed:
            wait = max(verdict.retry_after, self.pace.min_retry_seconds)
            return self._reject("checkin_too_soon", (wait, 2 * wait))
        view = await self.views.view(population, now)
        if view is None:
            return self._reject("unknown_population", unavailable_window(self.pace))
        task = view.task
        if self._arrivals.count(task.id, now):
            await asyncio.wrap_future(self._share_pool().submit(self._arrivals.share, task.id, now))
        reason = refusal(task, req)
        if reason is not None:
            return self._reject(reason, unavailable_window(self.pace))
        reason = ROUND_FULL
        if view.round is not None and can_assign(view.round, now):  # worth a claim; the claim decides
            bound = declared_weight_bound(
                plan_max=task.max_weight,
                local_epochs=task.config.local_epochs,
                seq_len=task.seq_len,
                example_count=req.example_count,
                token_count=req.token_count,
            )
            outcome = await self.claims.claim(task, Claim(cred.device_id, bound), now)
            if isinstance(outcome, Assignment):
                return self._accept(outcome)
            reason = outcome
            if reason == ROUND_FULL:  # the view said otherwise: it is stale
                self.views.invalidate()
        return self._reject(reason, steer(view, now, self._arrivals.rate(task.id), self.pace))

    def _count(self, outcome: str, reason: str) -> None:
        """One check-in in ``fedkeys_checkins_total`` (the labelled counters looked up once, not a check-in)."""
        counter = self._counters.get((outcome, reason))
        if counter is None:
            counter = self._counters[(outcome, reason)] = self.metrics.checkins.labels(outcome, reason)
        counter.inc()

    def _accept(self, assignment: Assignment) -> CheckinResponse:
        self._count("accepted", "")  # the claim thread logs the batch's assignments, one line a batch
        return CheckinResponse(outcome="accepted", assignment=assignment)

    def _reject(self, reason: str, window: tuple[float, float]) -> CheckinResponse:
        self._count("rejected", reason)
        return CheckinResponse(
            outcome="rejected",
            reason=reason,
            retry_window=RetryWindow(min_seconds=round(window[0], 3), max_seconds=round(window[1], 3)),
        )
