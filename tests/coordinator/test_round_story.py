"""coordinator/round_story.py: one sentence per round from its record."""

from __future__ import annotations

from status_fixtures import T0, round_info

from coordinator.round_story import explain_round


def test_explain_round_stalled_round_names_aborts_reasons_and_deadline() -> None:
    info = round_info(4, "abandoned", aborted=7, received=3, opened_unix=T0, closed_unix=T0 + 120)
    text = explain_round(info, span_seconds=146, abort_reasons={"ineligible": 7})
    assert text == (
        "round 4 took 120 of 146 s: 7 of 13 assigned devices aborted (ineligible: 7); "
        "goal 10 not reached before the report deadline (3 received)"
    )


def test_explain_round_lists_rejections_most_frequent_first() -> None:
    info = round_info(2, "abandoned", aborted=0, received=4, rejections={"bad_norm": 1, "bad_magic": 3})
    assert explain_round(info) == (
        "round 2 took 20 s: 4 uploads rejected (bad_magic: 3, bad_norm: 1); "
        "goal 10 not reached before the report deadline (4 received)"
    )


def test_explain_round_too_few_check_ins() -> None:
    info = round_info(1, "abandoned", assigned=6, aborted=0, received=6)
    assert explain_round(info).endswith(
        "goal 10 not reached before the report deadline: only 6 devices were assigned (6 received)"
    )


def test_explain_round_goal_met_but_abandoned_blames_the_commit_checks() -> None:
    info = round_info(3, "abandoned", aborted=0, received=10)
    assert explain_round(info) == (
        "round 3 took 20 s: abandoned with 10 of goal 10 received: the commit checks refused the sum"
    )


def test_explain_round_committed_and_open() -> None:
    assert explain_round(round_info(1)) == (
        "round 1 took 20 s: 3 of 13 assigned devices aborted; committed 10 updates (goal 10, 13 assigned)"
    )
    open_round = round_info(5, "reporting", aborted=0, closed_unix=None, received=1, opened_unix=T0)
    assert explain_round(open_round, now=T0 + 7) == (
        "round 5 has run 7 s: reporting: 1 of goal 10 received, 13 of 13 assigned"
    )
    assert explain_round(open_round).startswith("round 5: reporting")
    assert explain_round(open_round, now=T0 - 5).startswith("round 5 has run 0 s:")  # never a negative time
