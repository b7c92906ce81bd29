"""The round state machine: pure transitions over frozen round records.

Bonawitz et al. 2019 (§2.2-2.3): a round *selects* devices as they check in,
over-selecting (say 1.3x the goal) to absorb the devices that drop out; then it
*reports*: assigned devices train and upload. It is *committed* as soon as the
goal count of valid updates has arrived, or at the report deadline if at least
the minimum has; otherwise it is *abandoned*. Once selection is over, a round
does not wait out its deadline for uploads that cannot come: when every session
has uploaded or aborted it settles at once, and when too few sessions are left
to reach the minimum it is abandoned at once (an emulated day at the demo's
speed-up was otherwise lost to each such round). The coordinator then opens the
next round. Nothing here touches a database or a clock: callers pass ``now``.
"""

from __future__ import annotations

import dataclasses
import enum
import math

from coordinator.errors import UpdateRejected


class RoundState(enum.StrEnum):
    SELECTING = "selecting"
    REPORTING = "reporting"
    COMMITTED = "committed"
    ABANDONED = "abandoned"


TERMINAL = frozenset({RoundState.COMMITTED, RoundState.ABANDONED})


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """How a round is sized and timed (from the task's config)."""

    goal: int
    over_selection: float
    min_reports: int
    selection_seconds: float
    report_seconds: float

    def __post_init__(self) -> None:
        if self.goal < 1:
            raise ValueError(f"goal must be >= 1, got {self.goal}")
        if self.over_selection < 1.0:
            raise ValueError(f"over_selection must be >= 1, got {self.over_selection}")
        if not 1 <= self.min_reports <= self.goal:
            raise ValueError(f"min_reports must be in [1, goal={self.goal}], got {self.min_reports}")
        if not 0 < self.selection_seconds < self.report_seconds:
            raise ValueError(
                f"need 0 < selection_seconds ({self.selection_seconds}) < report_seconds ({self.report_seconds})"
            )

    @property
    def target(self) -> int:
        """Assignments the round hands out: ceil(goal * over_selection), never fewer than the goal."""
        return max(self.goal, math.ceil(self.goal * self.over_selection - 1e-9))


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """The counters and times that decide a round's state (a snapshot of its database row)."""

    state: RoundState
    goal: int
    target: int
    min_reports: int
    assigned: int
    received: int
    opened_at: float
    selection_deadline: float
    report_deadline: float
    aborted: int = 0  # sessions their devices aborted before uploading: they never contribute


def open_round(plan: RoundPlan, now: float) -> RoundRecord:
    """A fresh round, selecting from ``now``."""
    return RoundRecord(
        state=RoundState.SELECTING,
        goal=plan.goal,
        target=plan.target,
        min_reports=plan.min_reports,
        assigned=0,
        received=0,
        opened_at=now,
        selection_deadline=now + plan.selection_seconds,
        report_deadline=now + plan.report_seconds,
    )


def due_state(r: RoundRecord, now: float) -> RoundState:
    """The state the round should be in at ``now`` given its counters (idempotent).

    Example (goal 10, target 13, min_reports 6, selection over): 13 assigned, 8 aborted -> abandoned (5 left);
    13 assigned, 6 received, 7 aborted -> committed at once (nothing outstanding); 13 assigned, 6 received,
    6 aborted -> reporting until the last upload or the deadline.
    """
    if r.state in TERMINAL:
        return r.state
    if r.received >= r.goal:
        return RoundState.COMMITTED
    if now >= r.report_deadline:
        return RoundState.COMMITTED if r.received >= r.min_reports else RoundState.ABANDONED
    if r.state == RoundState.SELECTING and r.assigned < r.target and now < r.selection_deadline:
        return r.state
    # Selection is over: only the assigned sessions that did not abort can still upload.
    if r.assigned - r.aborted < r.min_reports:
        return RoundState.ABANDONED  # it will never reach its minimum
    if r.received + r.aborted >= r.assigned:
        return RoundState.COMMITTED  # every session uploaded or aborted (so received >= min_reports)
    return RoundState.REPORTING


def advance(r: RoundRecord, now: float) -> RoundRecord:
    """``r`` moved to its due state."""
    state = due_state(r, now)
    return r if state == r.state else dataclasses.replace(r, state=state)


def can_assign(r: RoundRecord, now: float) -> bool:
    """Whether a checking-in device may join this round now."""
    return advance(r, now).state == RoundState.SELECTING and r.assigned < r.target


def grant(r: RoundRecord, now: float, wanted: int) -> int:
    """How many of ``wanted`` devices checking in together the round takes now: up to its free slots if it may
    assign (``can_assign``), else none. Devices beyond the grant are refused; the claim that records the grant
    is conditional on the same counters, so a round never passes its target."""
    if wanted < 0:
        raise ValueError(f"wanted must be >= 0, got {wanted}")
    return min(wanted, r.target - r.assigned) if can_assign(r, now) else 0


def check_upload(r: RoundRecord, now: float, session_deadline: float) -> None:
    """Raise :class:`UpdateRejected` unless an update may still be added to this round."""
    state = advance(r, now).state
    if now >= session_deadline and state not in TERMINAL:
        raise UpdateRejected("deadline_passed", f"the session's deadline {session_deadline:.3f} passed at {now:.3f}")
    if state in TERMINAL or r.received >= r.goal:
        raise UpdateRejected("round_closed", f"round is {state.value} with {r.received}/{r.goal} updates")
