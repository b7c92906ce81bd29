"""Closing a round (commit or abandon) and opening the next, inside the caller's transaction.

At commit the round's running example-weighted sum becomes the mean delta, the
server optimizer turns it into the next model version (McMahan et al. 2017
FedAvg; Reddi et al. 2021 FedAdam; McMahan et al. 2018 DP-FedAvg when the task
adds noise, from the OS CSPRNG), checked against the bounds its validated
updates allow (``coordinator.commit_checks``: a round outside them is abandoned
with its reason instead); the new checkpoint is stored as a content-addressed
blob, the sum is dropped, and the next round opens. The caller holds the task and round
row locks (``coordinator.db``'s order), so exactly one process does this for a round.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregation import WeightedSum
from coordinator.aggregators import for_task, update_bound
from coordinator.blobstore import get_blob, put_blob
from coordinator.commit_checks import CommitRefused, check_mean, check_step
from coordinator.db import models, rounds, sessions, tasks
from coordinator.logs import event
from coordinator.metrics import Metrics
from coordinator.optimizers import (
    AdamState,
    ServerOptimizerConfig,
    dp_noise,
    dp_noised_mean,
    fedadam_max_step,
    fedadam_step,
    fedavg_step,
)
from coordinator.partials import drop_partials
from coordinator.records import TaskRow, model_sha256
from coordinator.rounds import RoundState, open_round
from wire.update import decode_weights, encode_weights

logger = logging.getLogger(__name__)


def commit_round(
    conn: Connection, task: TaskRow, round_row: sa.Row, acc: WeightedSum, now: float, metrics: Metrics
) -> int | None:
    """Apply the round's mean update (``acc``, its whole unrotated sum) to the task's model; returns the new version.

    Where ``acc`` came from (the gathered in-memory partials of a plain round, the unmasked sum of a secure
    one) does not matter here.

    A mean or next model outside what the round's validated updates allow
    (``coordinator.commit_checks``) is never written: the round is abandoned
    with the reason recorded, and None is returned.
    """
    r = round_row._mapping
    old_blob = get_blob(conn, model_sha256(conn, task.id, task.model_version))
    if old_blob is None:
        raise RuntimeError(f"model version {task.model_version} of task {task.id} has no checkpoint blob")
    old = np.concatenate([w.astype(np.float64).reshape(-1) for w in decode_weights(old_blob)])  # (P,)
    try:
        new, state_blob, mean = _next_model(task, old, acc.total, acc.weight, r["goal"], r["received"])
    except CommitRefused as err:
        abandon_round(conn, task, round_row, now, metrics, refused=err)
        return None
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
    finished = task.config.max_rounds is not None and committed + 1 >= task.config.max_rounds
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


def abandon_round(
    conn: Connection,
    task: TaskRow,
    round_row: sa.Row,
    now: float,
    metrics: Metrics,
    refused: CommitRefused | None = None,
) -> None:
    """Close the round without a new model; a refused commit's reason is counted in the round's rejections."""
    _close(conn, task, round_row, RoundState.ABANDONED, now, metrics)
    r = round_row._mapping
    if refused is not None:
        text = conn.execute(sa.select(rounds.c.rejections).where(rounds.c.id == r["id"])).scalar_one()
        counts = add_counts(text, {f"commit_{refused.reason}": 1})
        conn.execute(sa.update(rounds).where(rounds.c.id == r["id"]).values(rejections=counts))
    event(
        logger,
        "round_abandoned",
        logging.WARNING,
        population=task.population,
        round=r["number"],
        assigned=r["assigned"],
        received=r["received"],
        **({} if refused is None else {"reason": f"commit_{refused.reason}", "detail": repr(refused.message)}),
    )


def _next_model(
    task: TaskRow, old: np.ndarray, total: np.ndarray, weight: float, goal: int, received: int
) -> tuple[np.ndarray, bytes | None, np.ndarray]:
    """(next weights, optimizer state, applied mean) from the round's sum; CommitRefused if out of bounds.

    ``old`` and ``total`` are (P,) float64. DP rounds weigh devices uniformly and
    divide by the goal; their noise comes from the OS CSPRNG (``optimizers.dp_noise``).
    """
    c = task.config
    dp = c.dp_noise_multiplier > 0
    bound = update_bound(c, old.size, devices=received, weight_units=weight / task.max_weight)
    mean = total / (goal if dp else weight)  # (P,)
    check_mean(mean, bound)  # before any noise
    if dp:
        mean = dp_noised_mean(total, dp_noise(old.size, c.dp_noise_multiplier * c.norm_bound), goal=goal)
    opt = ServerOptimizerConfig(
        name=c.server_optimizer,
        learning_rate=c.server_lr,
        beta1=c.adam_beta1,
        beta2=c.adam_beta2,
        epsilon=c.adam_epsilon,
    )
    if opt.name == "fedadam":
        blob = task.optimizer_state
        state = AdamState.from_bytes(blob, old.size) if blob else AdamState.zeros(old.size)
        new, state = fedadam_step(old, mean, state, opt)
        check_step(old, new, coordinate_bound=fedadam_max_step(opt, state.step))
        return new, state.to_bytes(), mean
    new = fedavg_step(old, mean, opt.learning_rate)
    check_step(old, new, l2_bound=None if dp else opt.learning_rate * bound)
    return new, task.optimizer_state, mean


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
    for_task(task).open(conn, task, int(key[0]), number, now)  # a secure round's record
    conn.execute(sa.update(tasks).where(tasks.c.id == task.id).values(current_round=number))
    event(logger, "round_opened", population=task.population, round=number, version=task.model_version)
    return number


def add_counts(text: str, updates: dict[str, float]) -> str:
    """A JSON object of counters with ``updates`` added."""
    counts = json.loads(text or "{}")
    for key, value in updates.items():
        counts[key] = counts.get(key, 0) + value
    return json.dumps(counts, sort_keys=True)
