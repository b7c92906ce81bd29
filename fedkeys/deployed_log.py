"""A deployment's per-round log: ``metrics.csv`` and ``tensorboard/`` from the coordinator's round history.

Written with the simulation's own writer (``tff_sim.run_log.RunLog``, which
needs no TensorFlow) and, where the measure is the same, under the
simulation's column names, so ``tensorboard --logdir runs/demo`` draws the
simulated and the deployed run on one chart. One row per committed round:

- ``round``: the model version the round committed (the first commit after
  the initial model is 1), like the simulation's round: the model after that
  many aggregations;
- ``clients``: updates in the committed sum;
- ``train_tokens``: target tokens the clients trained on, each once (the sum
  of their FedAvg weights, tokens x local epochs, over the local epochs; not
  for a DP task, which weighs every device 1);
- ``upload_bytes``: bytes uploaded into the sum (the devices' mean reported
  upload size x updates; every update of a task has the same size);
- ``seconds``: wall seconds from the round's opening to its commit;
- ``client_lr``, ``server_lr``: the task's rates.

The simulation's ``loss`` (TFF's mean loss while training) has no deployed
twin; the devices report their own data's loss and recall before and after
local training instead, kept as their means (``device_loss_before`` ...), with
``coordinator_round`` (the coordinator's count, which abandoned rounds
advance too), ``assigned`` and ``aborted``. Only means over devices reach the
log, never one device's report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wire.protocol import RoundInfo, TaskCreate

SHARED_COLUMNS = ("round", "clients", "train_tokens", "upload_bytes", "seconds", "client_lr", "server_lr")
"""Columns of the simulation's metrics.csv (``tff_sim.run_log.COLUMNS``) that measure the same thing here."""

_DEVICE_MEANS = {
    "loss_before": "device_loss_before",
    "loss_after": "device_loss_after",
    "recall1_before": "device_recall_at_1_before",
    "recall1_after": "device_recall_at_1_after",
    "recall3_before": "device_recall_at_3_before",
    "recall3_after": "device_recall_at_3_after",
    "train_seconds": "device_train_seconds",
}  # the devices' report keys (device_runtime.device) -> this log's names

COLUMNS = (*SHARED_COLUMNS, "coordinator_round", "assigned", "aborted", *_DEVICE_MEANS.values())
"""The columns of a deployment's metrics.csv."""


def deployed_rows(
    rounds: Sequence[RoundInfo], task: TaskCreate, *, up_to_version: int | None = None
) -> list[dict[str, Any]]:
    """One row per committed round (by version, up to ``up_to_version``) of the task's history ``rounds``."""
    rows = []
    for info in sorted(rounds, key=lambda r: r.round):
        version = info.committed_version
        if info.state != "committed" or version is None or (up_to_version is not None and version > up_to_version):
            continue
        row: dict[str, Any] = {
            "round": version,
            "clients": info.received,
            "client_lr": task.learning_rate,
            "server_lr": task.server_lr,
            "coordinator_round": info.round,
            "assigned": info.assigned,
            "aborted": info.aborted,
        }
        if task.dp_noise_multiplier == 0:
            row["train_tokens"] = round(info.weight_sum / task.local_epochs)
        if info.closed_unix is not None:
            row["seconds"] = round(info.closed_unix - info.opened_unix, 3)
        if "upload_bytes" in info.metrics:
            row["upload_bytes"] = round(info.metrics["upload_bytes"] * info.received)
        row |= {name: info.metrics[key] for key, name in _DEVICE_MEANS.items() if key in info.metrics}
        rows.append(row)
    return rows


def write_deployed_log(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``out/metrics.csv`` and ``out/tensorboard/`` of ``rows`` (:func:`deployed_rows`)."""
    from tff_sim.run_log import RunLog

    Path(out).mkdir(parents=True, exist_ok=True)
    log = RunLog(Path(out), columns=COLUMNS)
    for row in rows:
        log.append(row)
