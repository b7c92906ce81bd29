"""Device reports and aborts: per-round participation counts and metric sums (means on the status page).

A completed report adds each metric (e.g. ``loss_before``, ``loss_after``) and the
durations to the round's sums; a session reports once. An abort frees nothing
(over-selection absorbs dropouts, Bonawitz et al. 2019 §2.2) but is counted.
Sessions are identified by their unguessable id; a bearer token, if sent, must match.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.db import ROUND_FIELDS, Database, rounds, sessions
from coordinator.errors import SessionError
from coordinator.logs import event
from coordinator.metrics import Metrics
from coordinator.records import load_session, token_sha256
from wire.protocol import AbortRequest, ReportRequest

logger = logging.getLogger(__name__)

# Report fields kept as per-round means next to the device's own metrics.
_REPORT_FIELDS = ("example_count", "download_seconds", "train_seconds")


def record_report(db: Database, metrics: Metrics, session_id: str, token: str | None, req: ReportRequest) -> None:
    with db.write() as conn:
        round_row, s = _lock_session(conn, session_id, token)
        if s["reported"]:
            raise SessionError("already_reported", f"session {session_id!r} already reported")
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
    event(logger, "report", round=r["number"], session=session_id, status=req.status, metrics=req.metrics)


def record_abort(db: Database, metrics: Metrics, session_id: str, token: str | None, req: AbortRequest) -> None:
    with db.write() as conn:
        round_row, s = _lock_session(conn, session_id, token)
        if s["state"] != "assigned":
            return  # already uploaded or aborted: nothing to undo
        conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(state="aborted"))
        conn.execute(sa.update(rounds).where(rounds.c.id == s["round_id"]).values(aborted=rounds.c.aborted + 1))
    metrics.aborts.inc()
    event(logger, "abort", round=round_row._mapping["number"], session=session_id, reason=req.reason)


def _lock_session(conn: Connection, session_id: str, token: str | None) -> tuple[sa.Row[Any], sa.RowMapping]:
    """Lock the session's round, then the session (the lock order of ``coordinator.db``)."""
    found = load_session(conn, session_id)
    if found is None:
        raise SessionError("unknown_session", f"no session {session_id!r}")
    round_row = conn.execute(
        sa.select(*ROUND_FIELDS).where(rounds.c.id == found._mapping["round_id"]).with_for_update()
    ).one()
    session = load_session(conn, session_id, lock=True)
    if session is None:
        raise SessionError("unknown_session", f"no session {session_id!r}")
    s = session._mapping
    if token is not None and not hmac.compare_digest(token_sha256(token), s["token_sha256"]):
        raise SessionError("bad_token", "the token does not match the session")
    return round_row, s
