from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from coordinator.errors import UpdateRejected
from coordinator.rounds import (
    RoundPlan,
    RoundState,
    advance,
    can_assign,
    check_upload,
    due_state,
    grant,
    open_round,
)

PLAN = RoundPlan(goal=10, over_selection=1.3, min_reports=6, selection_seconds=60, report_seconds=600)


def test_round_plan_target_is_ceil_of_goal_times_over_selection() -> None:
    assert PLAN.target == 13
    assert dataclasses.replace(PLAN, over_selection=1.0).target == 10
    assert RoundPlan(goal=3, over_selection=1.5, min_reports=1, selection_seconds=1, report_seconds=2).target == 5


@pytest.mark.parametrize(
    "changes",
    [{"goal": 0}, {"over_selection": 0.9}, {"min_reports": 11}, {"min_reports": 0}, {"selection_seconds": 600}],
)
def test_round_plan_bad_values_raise(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(PLAN, **changes)


def test_open_round_selects_with_deadlines_from_now() -> None:
    r = open_round(PLAN, 100.0)
    assert (r.state, r.assigned, r.received, r.target) == (RoundState.SELECTING, 0, 0, 13)
    assert (r.selection_deadline, r.report_deadline) == (160.0, 700.0)


def test_due_state_selecting_until_full_then_reporting() -> None:
    r = open_round(PLAN, 0.0)
    assert due_state(dataclasses.replace(r, assigned=12), 10) == RoundState.SELECTING
    assert due_state(dataclasses.replace(r, assigned=13), 10) == RoundState.REPORTING
    assert due_state(dataclasses.replace(r, assigned=6), 60) == RoundState.REPORTING
    assert due_state(dataclasses.replace(r, assigned=5), 60) == RoundState.ABANDONED  # can never reach min_reports


def test_due_state_commits_at_goal_or_at_deadline_with_minimum() -> None:
    r = dataclasses.replace(open_round(PLAN, 0.0), state=RoundState.REPORTING, assigned=13)
    assert due_state(dataclasses.replace(r, received=10), 100) == RoundState.COMMITTED
    assert due_state(dataclasses.replace(r, received=9), 599.9) == RoundState.REPORTING
    assert due_state(dataclasses.replace(r, received=6), 600) == RoundState.COMMITTED
    assert due_state(dataclasses.replace(r, received=5), 600) == RoundState.ABANDONED


def test_due_state_after_selection_settles_without_waiting_for_aborted_sessions() -> None:
    r = dataclasses.replace(open_round(PLAN, 0.0), state=RoundState.REPORTING, assigned=13)
    assert due_state(dataclasses.replace(r, aborted=8), 100) == RoundState.ABANDONED  # 5 left < min_reports 6
    assert due_state(dataclasses.replace(r, received=6, aborted=7), 100) == RoundState.COMMITTED  # none outstanding
    assert due_state(dataclasses.replace(r, received=6, aborted=6), 100) == RoundState.REPORTING  # one may upload
    assert due_state(dataclasses.replace(r, received=0, aborted=7), 100) == RoundState.REPORTING  # 6 may upload


def test_due_state_selecting_ignores_aborts_until_selection_ends() -> None:
    r = dataclasses.replace(open_round(PLAN, 0.0), assigned=8, aborted=8)
    assert due_state(r, 10) == RoundState.SELECTING  # more devices may still be assigned
    assert due_state(r, 60) == RoundState.ABANDONED
    assert due_state(dataclasses.replace(r, assigned=13, aborted=7, received=6), 10) == RoundState.COMMITTED


def test_due_state_terminal_states_stay() -> None:
    r = dataclasses.replace(open_round(PLAN, 0.0), state=RoundState.ABANDONED, received=10)
    assert advance(r, 10**6) is r


def test_can_assign_only_while_selecting_and_below_target() -> None:
    r = open_round(PLAN, 0.0)
    assert can_assign(r, 1.0)
    assert not can_assign(dataclasses.replace(r, assigned=13), 1.0)
    assert not can_assign(dataclasses.replace(r, assigned=7), 60.0)


def test_check_upload_after_session_deadline_refused() -> None:
    r = dataclasses.replace(open_round(PLAN, 0.0), assigned=13, state=RoundState.REPORTING)
    check_upload(r, 100.0, session_deadline=200.0)
    with pytest.raises(UpdateRejected) as err:
        check_upload(r, 200.0, session_deadline=200.0)
    assert err.value.reason == "deadline_passed"
    with pytest.raises(UpdateRejected) as err:
        check_upload(r, 700.0, session_deadline=700.0)
    assert err.value.reason == "round_closed"  # the round itself is over (abandoned) at its deadline


def test_grant_takes_up_to_the_free_slots_of_a_selecting_round() -> None:
    r = dataclasses.replace(open_round(PLAN, 100.0), assigned=10)  # target 13: 3 free
    assert [grant(r, 120.0, wanted) for wanted in (0, 1, 3, 5)] == [0, 1, 3, 3]
    assert grant(dataclasses.replace(r, assigned=13), 120.0, 5) == 0  # full
    assert grant(r, 160.0, 5) == 0  # at the selection deadline
    assert grant(dataclasses.replace(r, state=RoundState.REPORTING), 120.0, 5) == 0
    with pytest.raises(ValueError, match="wanted"):
        grant(r, 120.0, -1)
