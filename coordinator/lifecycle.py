"""Closing a round (commit or abandon) and opening the next, inside the caller's transaction.

At commit the round's running example-weighted sum becomes the mean delta, the
server optimizer turns it into the next model version (McMahan et al. 2017
FedAvg; Reddi et al. 2021 FedAdam; McMahan et al. 2018 DP-FedAvg when the task
adds noise), the new checkpoint is stored as a content-addressed blob, the sum
is dropped, and the next round opens. The caller holds the task and round row
locks (``coordinator.db``'s order), so exactly one process does this for a round.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregation import WeightedSum
from coordinator.blobstore import get_blob, put_blob
from coordinator.db import models, rounds, sessions, tasks
from coordinator.logs import event
from coordinator.metrics import Metrics
from coordinator.optimizers import AdamState, ServerOptimizerConfig, dp_noised_mean, fedadam_step, fedavg_step
from coordinator.partials import drop_partials
from coordinator.records import TaskRow, model_sha256
from coordinator.rounds import RoundState, open_round
from coordinator.secure_records import open_secure_round
from wire.update import decode_weights, encode_weights

logger = logging.getLogger(__name__)


def commit_round(
    conn: Connection, task: TaskRow, round_row: sa.Row, acc: WeightedSum, now: float, metrics: Metrics
) -> int:
    """Apply the round's mean update (``acc``, its whole unrotated sum) to the task's model; returns the new version.

    Where ``acc`` came from (the gathered in-memory partials of a plain round, the unmasked sum of a secure
    one) does not matter here.
    """
    r = round_row._mapping
    old_blob = get_blob(conn, model_sha256(conn, task.id, task.model_version))
    if old_blob is None:
        raise RuntimeError(f"model version {task.model_version} of task {task.id} has no checkpoint blob")
    old = np.concatenate([w.astype(np.float64).reshape(-1) for w in decode_weights(old_blob)])  # (P,)
    c = task.config
    if c.dp_noise_multiplier > 0 and c.norm_bound is not None:
        mean = dp_noised_mean(
            acc.total,
            goal=r["goal"],
            norm_bound=c.norm_bound,
            noise_multiplier=c.dp_noise_multiplier,
            seed=c.seed,
            round=r["number"],
        )
    else:
        mean = acc.total / acc.weight  # (P,)
    opt = ServerOptimizerConfig(
        name=c.server_optimizer,
        learning_rate=c.server_lr,
        beta1=c.adam_beta1,
        beta2=c.adam_beta2,
        epsilon=c.adam_epsilon,
    )
    state_blob = task.optimizer_state
    if opt.name == "fedadam":
        state = AdamState.from_bytes(state_blob, old.size) if state_blob else AdamState.zeros(old.size)
        new, state = fedadam_step(old, mean, state, opt)
        state_blob = state.to_bytes()
    else:
        new = fedavg_step(old, mean, opt.learning_rate)
    weights = [w.astype(np.float32) for w in acc.split(new)]
    digest = put_blob(conn, encode_weights(weights), now)
    version = task.model_version + 1
    conn.execute(
        sa.insert(models).values(
            task_id=task.id, version=version, round=r["number"], weights_sha256=digest, created_at=now
        )
    )
    committed = conn.execute(
        sa.select(sa.func.count()).where(rounds.c.task_id == task.id, rounds.c.state == RoundState.COMMITTED.value)
    ).scalar_one()
    finished = c.max_rounds is not None and committed + 1 >= c.max_rounds
    conn.execute(
        sa.update(tasks)
        .where(tasks.c.id == task.id)
        .values(model_version=version, optimizer_state=state_blob, finished=finished)
    )
    _close(conn, task, round_row, RoundState.COMMITTED, now, metrics, committed_version=version)
    event(
        logger,
        "round_committed",
        population=task.population,
        round=r["number"],
        version=version,
        updates=r["received"],
        weight=acc.weight,
        norm=float(np.linalg.norm(mean)),
    )
    return version


def abandon_round(conn: Connection, task: TaskRow, round_row: sa.Row, now: float, metrics: Metrics) -> None:
    _close(conn, task, round_row, RoundState.ABANDONED, now, metrics)
    r = round_row._mapping
    event(
        logger,
        "round_abandoned",
        logging.WARNING,
        population=task.population,
        round=r["number"],
        assigned=r["assigned"],
        received=r["received"],
    )


def _close(
    conn: Connection,
    task: TaskRow,
    round_row: sa.Row,
    state: RoundState,
    now: float,
    metrics: Metrics,
    committed_version: int | None = None,
) -> None:
    r = round_row._mapping
    conn.execute(
        sa.update(rounds)
        .where(rounds.c.id == r["id"])
        .values(state=state.value, closed_at=now, committed_version=committed_version)
    )
    drop_partials(conn, r["id"])  # counts and sealed partials of the closed round
    # Sessions exist for a round's reports; keep this round's and the previous one's, drop older ones.
    old_rounds = sa.select(rounds.c.id).where(rounds.c.task_id == task.id, rounds.c.number < r["number"] - 1)
    conn.execute(sa.delete(sessions).where(sessions.c.round_id.in_(old_rounds)))
    metrics.rounds.labels(state.value).inc()
    metrics.round_seconds.labels(state.value).observe(max(0.0, now - r["opened_at"]))


def open_next_round(conn: Connection, task_id: int, now: float) -> int | None:
    """Open the task's next round unless it is paused or finished; returns its number."""
    task = TaskRow.of(conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).one())
    if task.paused or task.finished:
        return None
    number = 0 if task.current_round is None else task.current_round + 1
    rec = open_round(task.plan, now)
    inserted = conn.execute(
        sa.insert(rounds).values(
            task_id=task.id,
            number=number,
            state=rec.state.value,
            model_version=task.model_version,
            goal=rec.goal,
            target=rec.target,
            min_reports=rec.min_reports,
            assigned=0,
            received=0,
            aborted=0,
            reports_completed=0,
            reports_failed=0,
            opened_at=now,
            selection_deadline=rec.selection_deadline,
            report_deadline=rec.report_deadline,
            weight_sum=0.0,
            rejections="{}",
            metrics="{}",
        )
    )
    key = inserted.inserted_primary_key
    assert key is not None
    if task.config.secure_aggregation:
        open_secure_round(conn, task, int(key[0]), number, now)
    conn.execute(sa.update(tasks).where(tasks.c.id == task.id).values(current_round=number))
    event(logger, "round_opened", population=task.population, round=number, version=task.model_version)
    return number


def add_counts(text: str, updates: dict[str, float]) -> str:
    """A JSON object of counters with ``updates`` added."""
    counts = json.loads(text or "{}")
    for key, value in updates.items():
        counts[key] = counts.get(key, 0) + value
    return json.dumps(counts, sort_keys=True)
