"""A deployment's metrics.csv and TensorBoard log from the round history (fedkeys/deployed_log.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fresh_interpreter import run_fresh

from fedkeys.deployed_log import COLUMNS, SHARED_COLUMNS, deployed_rows, write_deployed_log
from tff_sim.run_log import COLUMNS as SIM_COLUMNS
from wire.protocol import RoundInfo, TaskCreate

Scalars = dict[str, list[tuple[int, float]]]
_SHA = "0" * 64


def _task(**fields: Any) -> TaskCreate:
    settings = {"population": "kb", "goal_count": 2, "local_epochs": 2, "learning_rate": 0.5, "server_lr": 1.0}
    return TaskCreate(plan_sha256=_SHA, checkpoint_sha256=_SHA, **(settings | fields))


def _round(number: int, state: str, version: int | None, **fields: Any) -> RoundInfo:
    values: dict[str, Any] = {
        "round": number, "state": state, "model_version": 0, "committed_version": version, "goal": 2,
        "target": 3, "assigned": 3, "received": 2, "aborted": 1, "reports_completed": 2, "reports_failed": 0,
        "rejections": {}, "metrics": {}, "opened_unix": 1000.0, "closed_unix": 1012.5, "weight_sum": 0.0,
    }  # fmt: skip
    return RoundInfo(**(values | fields))


# means of the devices' reports, as the coordinator keeps them
REPORTED = {
    "upload_bytes": 1500.0, "loss_before": 4.5, "loss_after": 4.0, "recall1_before": 0.125, "recall1_after": 0.25,
    "recall3_before": 0.25, "recall3_after": 0.5, "train_seconds": 0.75, "tokens": 200.0, "raw_bytes": 6000.0,
    "download_seconds": 0.1,
}  # fmt: skip
HISTORY = [
    _round(3, "committed", 2, weight_sum=300.0, closed_unix=1030.25, metrics={"upload_bytes": 1500.0}),
    _round(2, "abandoned", None, received=1, weight_sum=80.0),
    _round(1, "committed", 1, weight_sum=400.0, metrics=REPORTED),
    _round(4, "reporting", None, closed_unix=None),
]


def test_deployed_rows_one_per_committed_round_by_model_version() -> None:
    assert deployed_rows(HISTORY, _task()) == [
        {
            "round": 1, "clients": 2, "client_lr": 0.5, "server_lr": 1.0, "coordinator_round": 1, "assigned": 3,
            "aborted": 1, "train_tokens": 200, "seconds": 12.5, "upload_bytes": 3000, "device_loss_before": 4.5,
            "device_loss_after": 4.0, "device_recall_at_1_before": 0.125, "device_recall_at_1_after": 0.25,
            "device_recall_at_3_before": 0.25, "device_recall_at_3_after": 0.5, "device_train_seconds": 0.75,
        },
        {
            "round": 2, "clients": 2, "client_lr": 0.5, "server_lr": 1.0, "coordinator_round": 3, "assigned": 3,
            "aborted": 1, "train_tokens": 150, "seconds": 30.25, "upload_bytes": 3000,
        },
    ]  # fmt: skip


def test_deployed_rows_stop_at_the_version_asked_for() -> None:
    assert [r["round"] for r in deployed_rows(HISTORY, _task(), up_to_version=1)] == [1]
    assert deployed_rows(HISTORY, _task(), up_to_version=0) == []


def test_deployed_rows_of_a_dp_task_leave_train_tokens_out() -> None:
    """DP-FedAvg weighs every device 1, so the weight sum counts devices, not tokens."""
    task = _task(dp_noise_multiplier=0.5, norm_policy="clip", norm_bound=1.0)
    assert [("train_tokens" in r) for r in deployed_rows(HISTORY, task)] == [False, False]


def test_deployed_columns_share_the_simulations_names() -> None:
    assert set(SHARED_COLUMNS) <= set(SIM_COLUMNS)
    assert COLUMNS[: len(SHARED_COLUMNS)] == SHARED_COLUMNS


def test_write_deployed_log_writes_csv_and_tensorboard_without_tensorflow(
    tmp_path: Path, tensorboard_scalars: Callable[[Path], Scalars]
) -> None:
    """The coordinator side never imports TensorFlow: the log is written in a process that has none."""
    rows = deployed_rows(HISTORY, _task())
    script = (
        "import json\n"
        "from pathlib import Path\n"
        "from fedkeys.deployed_log import write_deployed_log\n"
        f"write_deployed_log(Path({str(tmp_path)!r}), json.loads({json.dumps(rows)!r}))\n"
    )
    assert run_fresh(script).imported == []
    with (tmp_path / "metrics.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["round"] for r in table] == ["1", "2"]
    assert table[0]["device_recall_at_1_after"] == "0.25" and table[1]["device_loss_before"] == ""
    assert tuple(table[0]) == COLUMNS
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars["train_tokens"] == [(1, 200.0), (2, 150.0)]
    assert scalars["device_loss_before"] == [(1, 4.5)]
    assert "round" not in scalars


def test_deployed_and_simulated_logs_share_tags(tmp_path: Path, tensorboard_scalars: Callable[[Path], Scalars]) -> None:
    """A simulated and a deployed round with the same numbers give the same scalars under the shared names."""
    from tff_sim.run_log import RunLog

    shared = {"round": 1, "clients": 2, "train_tokens": 200, "upload_bytes": 3000, "seconds": 12.5}
    (tmp_path / "sim").mkdir()
    RunLog(tmp_path / "sim").append(shared | {"loss": 4.25})
    write_deployed_log(tmp_path / "deployed", [shared | {"device_loss_before": 4.5}])
    simulated = tensorboard_scalars(tmp_path / "sim" / "tensorboard")
    deployed = tensorboard_scalars(tmp_path / "deployed" / "tensorboard")
    assert (
        {k: v for k, v in simulated.items() if k != "loss"}
        == {k: v for k, v in deployed.items() if not k.startswith("device_")}
        == {"clients": [(1, 2.0)], "train_tokens": [(1, 200.0)], "upload_bytes": [(1, 3000.0)], "seconds": [(1, 12.5)]}
    )
