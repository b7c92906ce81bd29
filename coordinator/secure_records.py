"""A secure round's stored state: its public parameters, its ``secagg`` record row, the sessions' device ids.

Kept apart from ``coordinator.secure_rounds`` (which commits and abandons rounds)
so that opening a round (``coordinator.lifecycle``) can create the record.
Device ids are the assignment order (0 .. target - 1); the round's ``n`` is its
target, so devices that were never assigned count as dropouts before
advertising keys (Bonawitz et al. 2017; SecAgg+ graph of Bell et al. 2020).
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.db import fetch_bytes, secagg_devices, secagg_rounds
from coordinator.errors import UpdateRejected
from coordinator.records import TaskRow
from secagg import encoding, phases
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.updates import ring_length
from wire.protocol import SecureAggregation

_SECAGG_SALT = 0x5EC0A


def round_params(task: TaskRow, number: int) -> tuple[RoundParams, RingSpec]:
    """The public parameters of the task's secure round ``number`` (the same on every worker)."""
    c = task.config
    target = task.plan.target
    seed = int(np.random.SeedSequence([c.seed, _SECAGG_SALT, number]).generate_state(1)[0])
    length = ring_length(task.shapes)  # the weight, then every coordinate (``secagg.updates``)
    threshold = max(2, min(c.secagg_threshold or c.min_reports or c.goal_count, target))
    params = RoundParams(round=number, round_seed=seed, n=max(2, target), length=length, threshold=threshold)
    return params, RingSpec(bits=c.secagg_bits, clip=c.secagg_clip, max_weight=task.max_weight)


def phase_deadlines(task: TaskRow) -> phases.PhaseDeadlines:
    """Advertising lasts the selection plus 60% of the rest (devices train, then advertise); then 10% a phase.

    Each phase closes early once every device still in the round has answered.
    """
    c = task.config
    rest = c.report_seconds - c.selection_seconds
    return phases.PhaseDeadlines(
        advertise_s=c.selection_seconds + 0.6 * rest, share_s=0.1 * rest, input_s=0.1 * rest, unmask_s=0.1 * rest
    )


def open_secure_round(conn: Connection, task: TaskRow, round_id: int, number: int, now: float) -> None:
    """Store a fresh ``SecureRound`` next to a round that just opened."""
    params, spec = round_params(task, number)
    spec.check_devices(params.n)
    record = phases.open_round(params, phase_deadlines(task), now)
    conn.execute(
        sa.insert(secagg_rounds).values(
            round_id=round_id,
            phase=record.phase.value,
            closes_at=record.closes_at,
            record=encoding.encode_round(record),
        )
    )


def assign_device(
    conn: Connection, task: TaskRow, round_id: int, number: int, session_id: str, index: int
) -> SecureAggregation:
    """Record the session's device id (its assignment order) and return what the device needs to know."""
    params, spec = round_params(task, number)
    conn.execute(sa.insert(secagg_devices).values(session_id=session_id, round_id=round_id, device=index))
    return SecureAggregation(
        device=index,
        devices=params.n,
        round_seed=params.round_seed,
        length=params.length,
        threshold=params.threshold,
        bits=spec.bits,
        clip=spec.clip,
        max_weight=spec.max_weight,
    )


def load_record(conn: Connection, round_id: int, *, lock: bool) -> phases.SecureRound:
    if lock:
        conn.execute(sa.select(secagg_rounds.c.round_id).where(secagg_rounds.c.round_id == round_id).with_for_update())
    blob = fetch_bytes(conn, secagg_rounds.c.record, {secagg_rounds.c.round_id: round_id})
    if blob is None:
        raise UpdateRejected("round_closed", f"round {round_id} has no secure-aggregation state")
    return encoding.decode_round(blob)


def store_record(conn: Connection, round_id: int, record: phases.SecureRound) -> None:
    conn.execute(
        sa.update(secagg_rounds)
        .where(secagg_rounds.c.round_id == round_id)
        .values(phase=record.phase.value, closes_at=record.closes_at, record=encoding.encode_round(record))
    )


def due(conn: Connection, round_id: int, now: float) -> bool:
    """Whether the round clock must act: a phase deadline passed, or the protocol ended."""
    row = conn.execute(
        sa.select(secagg_rounds.c.phase, secagg_rounds.c.closes_at).where(secagg_rounds.c.round_id == round_id)
    ).first()
    if row is None:
        return False
    phase, closes_at = row
    return phase in (phases.Phase.DONE.value, phases.Phase.ABANDONED.value) or now >= closes_at
