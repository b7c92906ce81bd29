"""coordinator.gatekeeper: the one session policy, as a table of exact outcomes."""

from __future__ import annotations

import pytest

from coordinator.errors import SessionError
from coordinator.gatekeeper import Action, SessionRecord, authorize, declared_weight_bound
from coordinator.records import token_sha256


def _session(state: str = "assigned", reported: bool = False) -> SessionRecord:
    return SessionRecord("sid", 1, token_sha256("tok"), state, reported, 100.0, 32.0)


def _why(session: SessionRecord | None, token: str | None, action: Action) -> str | None:
    try:
        authorize(session, token, action, "sid")
    except SessionError as err:
        return err.reason
    return None


@pytest.mark.parametrize("action", list(Action))
def test_authorize_refuses_without_the_sessions_token(action: Action) -> None:
    assert _why(_session(), None, action) == "missing_token"
    assert _why(_session(), "", action) == "missing_token"
    assert _why(None, None, action) == "missing_token"  # checked before the session is even looked at
    assert _why(None, "tok", action) == "unknown_session"
    assert _why(_session(), "tok2", action) == "bad_token"
    assert _why(_session(state="uploaded", reported=True), "wrong", action) == "bad_token"  # no state leaks


@pytest.mark.parametrize(
    "state, reported, expected",
    [
        ("assigned", False, {"upload": None, "report": None, "abort": None, "secagg": None}),
        ("uploaded", False, {"upload": "token_used", "report": None, "abort": None, "secagg": None}),
        ("aborted", False, {"upload": "session_aborted", "report": None, "abort": None, "secagg": "session_aborted"}),
        ("uploaded", True, {"upload": "token_used", "report": "already_reported", "abort": None, "secagg": None}),
    ],
)
def test_authorize_policy_table(state: str, reported: bool, expected: dict[str, str | None]) -> None:
    got = {a.value: _why(_session(state, reported), "tok", a) for a in Action}
    assert got == expected


def test_declared_weight_bound_uses_tokens_else_examples_times_seq_len_capped_by_the_plan() -> None:
    bound = declared_weight_bound
    assert bound(plan_max=32.0, local_epochs=1, seq_len=4, example_count=1, token_count=None) == 4.0
    assert bound(plan_max=32.0, local_epochs=2, seq_len=4, example_count=1, token_count=None) == 8.0
    assert bound(plan_max=32.0, local_epochs=2, seq_len=4, example_count=1, token_count=3) == 6.0
    assert bound(plan_max=32.0, local_epochs=1, seq_len=4, example_count=10**9, token_count=None) == 32.0
    assert bound(plan_max=32.0, local_epochs=1, seq_len=4, example_count=5, token_count=0) == 0.0
