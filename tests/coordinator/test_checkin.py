"""The check-in's pure decisions (``coordinator.checkin``): refusals that need no round, and the retry window."""

from __future__ import annotations

import dataclasses

from coordinator.checkin import refusal, steer
from coordinator.checkin_views import PopulationView
from coordinator.pace import PaceConfig
from coordinator.records import TaskRow
from coordinator.rounds import RoundState, open_round
from wire.protocol import CheckinRequest, TaskCreate

_CONFIG = TaskCreate.model_validate(
    {
        "population": "p",
        "plan_sha256": "a" * 64,
        "checkpoint_sha256": "b" * 64,
        "goal_count": 10,
        "over_selection": 1.3,
        "codec": "quant8",
        "selection_seconds": 60,
        "report_seconds": 600,
        "max_rows": 8,
    }
)
TASK = TaskRow(
    id=1,
    population="p",
    name="train",
    config=_CONFIG,
    shapes=((2,),),
    batch_size=2,
    seq_len=4,
    paused=False,
    finished=False,
    model_version=0,
    current_round=0,
    optimizer_state=None,
)
REQ = CheckinRequest(client_version="t", runtime="t", codecs=["quant8"], example_count=5, token_count=20)
PACE = PaceConfig(min_retry_seconds=5, max_retry_seconds=3600, unavailable_seconds=600)


def test_refusal_order_finished_paused_codec_no_examples() -> None:
    assert refusal(TASK, REQ) is None
    both = dataclasses.replace(TASK, finished=True, paused=True)
    assert refusal(both, REQ) == "finished"
    assert refusal(dataclasses.replace(TASK, paused=True), REQ) == "paused"
    assert refusal(TASK, REQ.model_copy(update={"codecs": ["float32"]})) == "codec"
    assert refusal(TASK, REQ.model_copy(update={"example_count": 0})) == "no_examples"
    assert refusal(TASK, REQ.model_copy(update={"token_count": 0})) == "no_examples"


def test_steer_starts_at_the_expected_end_and_spreads_by_the_arrival_rate() -> None:
    current = open_round(TASK.plan, 1000.0)  # target 13, selecting for 60 s
    view = PopulationView(TASK, current, round_end=1100.0, due=False)
    # 100 s to the expected end; 13 per 60 s needed, 1.3/s arriving: spread over 6 selection windows
    assert steer(view, 1000.0, 1.3, PACE) == (100.0, 100.0 + 60 * 6)
    assert steer(view, 1200.0, 0.0, PACE) == (5.0, 65.0)  # overdue: come back at the earliest
    closed = PopulationView(TASK, dataclasses.replace(current, state=RoundState.COMMITTED), None, due=False)
    assert steer(closed, 1000.0, 0.0, PACE) == (5.0, 65.0)
