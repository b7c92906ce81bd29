"""Device reports and aborts: per-round participation counts and metric sums (means on the status page).

A completed report adds each metric (e.g. ``loss_before``, ``loss_after``) and the
durations to the round's sums; a session reports once. An abort frees nothing
(over-selection absorbs dropouts, Bonawitz et al. 2019 §2.2) but is counted.
Both need the session's upload token (``coordinator.gatekeeper``): a session id alone
neither aborts a victim nor forges its metrics (issue 14 point 7).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.db import ROUND_FIELDS, Database, rounds, sessions
from coordinator.gatekeeper import Action, SessionRecord, admit
from coordinator.logs import event, session_ref
from coordinator.metrics import Metrics
from wire.protocol import AbortRequest, ReportRequest

logger = logging.getLogger(__name__)

# Report fields kept as per-round means next to the device's own metrics.
_REPORT_FIELDS = ("example_count", "download_seconds", "train_seconds")


def record_report(db: Database, metrics: Metrics, session_id: str, token: str | None, req: ReportRequest) -> None:
    with db.read() as conn:  # refusals cost a read, never a write transaction
        admit(conn, session_id, token, Action.REPORT)
    with db.write() as conn:
        round_row, _s = _lock_session(conn, session_id, token, Action.REPORT)  # a concurrent second report loses
        r = round_row._mapping
        values = {k: float(getattr(req, k)) for k in _REPORT_FIELDS} | req.metrics
        sums = json.loads(r["metrics"] or "{}")
        if req.status == "completed":
            for key, value in values.items():
                total, count = sums.get(key, [0.0, 0])
                sums[key] = [total + value, count + 1]
        column = rounds.c.reports_completed if req.status == "completed" else rounds.c.reports_failed
        conn.execute(
            sa.update(rounds)
            .where(rounds.c.id == r["id"])
            .values({column: column + 1, rounds.c.metrics: json.dumps(sums, sort_keys=True)})
        )
        conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(reported=True))
    metrics.reports.labels(req.status).inc()
    event(logger, "report", round=r["number"], session=session_ref(session_id), status=req.status, metrics=req.metrics)


def record_abort(db: Database, metrics: Metrics, session_id: str, token: str | None, req: AbortRequest) -> None:
    with db.read() as conn:
        if admit(conn, session_id, token, Action.ABORT).state != "assigned":
            return  # already uploaded or aborted: nothing to undo, and no write
    with db.write() as conn:
        round_row, s = _lock_session(conn, session_id, token, Action.ABORT)
        if s.state != "assigned":
            return
        conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(state="aborted"))
        conn.execute(sa.update(rounds).where(rounds.c.id == s.round_id).values(aborted=rounds.c.aborted + 1))
    metrics.aborts.inc()
    event(logger, "abort", round=round_row._mapping["number"], session=session_ref(session_id), reason=req.reason)


def _lock_session(
    conn: Connection, session_id: str, token: str | None, action: Action
) -> tuple[sa.Row[Any], SessionRecord]:
    """Lock the session's round, then the session (the lock order of ``coordinator.db``), and re-check it."""
    found = admit(conn, session_id, token, None)
    round_row = conn.execute(sa.select(*ROUND_FIELDS).where(rounds.c.id == found.round_id).with_for_update()).one()
    return round_row, admit(conn, session_id, token, action, lock=True)
