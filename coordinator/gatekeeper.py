"""The one session gatekeeper: who may upload, report, abort or speak a secure-aggregation phase.

Every request on ``/v1/sessions/{id}/...`` passes :func:`authorize` with the
same rule (issue 14 point 7 and "one session gatekeeper with one policy"):

1. a bearer token is required (``missing_token``), checked before any database read;
2. the session must exist (``unknown_session``);
3. the token's sha256 must equal the session's, compared in constant time (``bad_token``);
4. then what the action needs of the session's state:

   ======== ============================================================
   action   refused when
   ======== ============================================================
   upload   already uploaded (``token_used``), aborted (``session_aborted``)
   secagg   aborted (``session_aborted``)
   report   already reported (``already_reported``)
   abort    never (aborting twice, or after uploading, changes nothing)
   ======== ============================================================

Callers check once in a read transaction before reading a body or opening a
write (so an unauthenticated request costs one indexed read, no write, no
body), and again under the row lock in the write that acts (so concurrent
replays lose). Refusals before step 3 passes are unauthenticated: callers
count them in process metrics only, never in the database.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.errors import SessionError
from coordinator.records import load_session, token_sha256

UNAUTHENTICATED = frozenset({"missing_token", "unknown_session", "bad_token"})


class Action(enum.Enum):
    UPLOAD = "upload"
    REPORT = "report"
    ABORT = "abort"
    SECAGG = "secagg"


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """A session row as the gatekeeper sees it."""

    id: str
    round_id: int
    token_sha256: str
    state: str  # assigned | uploaded | aborted
    reported: bool
    deadline: float
    max_weight: float

    @classmethod
    def of(cls, m: sa.RowMapping) -> SessionRecord:
        return cls(
            id=m["id"],
            round_id=int(m["round_id"]),
            token_sha256=m["token_sha256"],
            state=m["state"],
            reported=bool(m["reported"]),
            deadline=float(m["deadline"]),
            max_weight=float(m["max_weight"]),
        )


def require_token(token: str | None) -> str:
    """Step 1, before any database access."""
    if not token:
        raise SessionError("missing_token", "this request needs an 'Authorization: Bearer <upload_token>' header")
    return token


def authenticate(session: SessionRecord | None, token: str | None, session_id: str) -> SessionRecord:
    """Steps 1-3: the session if ``token`` is its token, else SessionError (an unauthenticated refusal)."""
    token = require_token(token)
    if session is None:
        raise SessionError("unknown_session", f"no session {session_id[:8]!r}...")
    if not hmac.compare_digest(token_sha256(token), session.token_sha256):
        raise SessionError("bad_token", "the token does not match the session")
    return session


def permit(session: SessionRecord, action: Action) -> None:
    """Step 4: whether an authenticated session's state allows ``action`` (the table above)."""
    if action is Action.UPLOAD and session.state == "uploaded":
        raise SessionError("token_used", "this session already uploaded its update")
    if action in (Action.UPLOAD, Action.SECAGG) and session.state == "aborted":
        raise SessionError("session_aborted", "this session was aborted")
    if action is Action.REPORT and session.reported:
        raise SessionError("already_reported", "this session already reported")


def authorize(session: SessionRecord | None, token: str | None, action: Action, session_id: str) -> SessionRecord:
    """The whole policy (module docstring): the session if ``token`` may do ``action`` on it, else SessionError."""
    found = authenticate(session, token, session_id)
    permit(found, action)
    return found


def admit(
    conn: Connection, session_id: str, token: str | None, action: Action | None, *, lock: bool = False
) -> SessionRecord:
    """Load the session (row-locked if ``lock``) and :func:`authorize` ``action`` (None: authenticate only)."""
    require_token(token)  # no read for a request without a token
    row = load_session(conn, session_id, lock=lock)
    found = authenticate(None if row is None else SessionRecord.of(row._mapping), token, session_id)
    if action is not None:
        permit(found, action)
    return found


def declared_weight_bound(
    *, plan_max: float, local_epochs: int, seq_len: int, example_count: int, token_count: int | None
) -> float:
    """The largest FedAvg weight (target tokens over all epochs) a session may claim, from its check-in.

    The device trains on at most its declared tokens (``token_count``; without it, ``example_count`` rows of
    at most ``seq_len`` targets each) once per local epoch, and never more than the plan allows
    (``max_rows * seq_len * local_epochs``). So a device that declared 1 example cannot weigh its update
    like a million tokens (issue 14 point 2).
    """
    tokens = token_count if token_count is not None else example_count * seq_len
    return float(min(plan_max, tokens * local_epochs))
