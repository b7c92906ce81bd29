"""Round records for the status page's tests (and the browser test): a stalled run in miniature."""

from __future__ import annotations

from typing import Any

from wire.protocol import RoundInfo, TaskCreate, TaskStatus

SHA = "0" * 64
T0 = 1_700_000_000.0


def round_info(number: int, state: str = "committed", **fields: Any) -> RoundInfo:
    base: dict[str, Any] = {
        "round": number,
        "state": state,
        "model_version": number - 1,
        "committed_version": number if state == "committed" else None,
        "goal": 10,
        "target": 13,
        "assigned": 13,
        "received": 10,
        "aborted": 3,
        "reports_completed": 10,
        "reports_failed": 0,
        "rejections": {},
        "metrics": {
            "loss_before": 8.5 - 0.5 * number,
            "loss_after": 8.2 - 0.5 * number,
            "recall1_before": 0.03 * number,
            "recall1_after": 0.03 * number + 0.01,
            "upload_bytes": 3_123_000.0,
            "tokens": 250.0,
        },
        "opened_unix": T0 + 30 * number,
        "closed_unix": T0 + 30 * number + 20,
        "weight_sum": 2500.0,
    }
    return RoundInfo.model_validate({**base, **fields})


def stalled_run() -> tuple[TaskStatus, list[RoundInfo]]:
    """Three committed rounds, a fourth abandoned after 120 s (7 of 13 aborted, 2 rejected), a fifth open."""
    rounds = [round_info(n) for n in (1, 2, 3)]
    rounds.append(
        round_info(
            4, "abandoned", aborted=7, received=3, reports_completed=3, rejections={"bad_norm": 2},
            opened_unix=T0 + 120, closed_unix=T0 + 240, metrics={},
        )
    )  # fmt: skip
    rounds.append(round_info(5, "reporting", received=1, closed_unix=None, opened_unix=T0 + 245, model_version=3))
    config = TaskCreate(population="keyboard", plan_sha256=SHA, checkpoint_sha256=SHA, goal_count=10)
    status = TaskStatus(
        population="keyboard", task="train", paused=False, finished=False, model_version=3,
        rounds_committed=3, rounds_abandoned=1, current=rounds[-1], config=config,
    )  # fmt: skip
    return status, rounds
