"""Secure rounds: the four ``secagg`` phases over the coordinator's database.

A task with ``secure_aggregation`` never sees an individual update: its devices
run Bonawitz et al. 2017's protocol with the SecAgg+ neighbour graph (Bell et
al. 2020) through ``/v1/sessions/{id}/secagg/{phase}``, and the server learns
only the ring sum of the masked inputs of at least ``threshold`` devices. The
round's ``secagg.phases.SecureRound`` lives in one row (``fk_secagg``, locked
per request); the round clock closes phases at their deadlines and, once the
sum is unmasked, checks it against what in-range inputs can sum to
(``secagg.bounds``) and turns it into the token-weighted mean delta that the
usual commit applies. A round whose protocol is abandoned, or whose sum fails
the check, is abandoned whole, with the reason kept in its record.

Parameters and storage: ``coordinator.secure_records``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.aggregation import WeightedSum
from coordinator.db import Database, rounds, secagg_devices
from coordinator.errors import UpdateRejected
from coordinator.gatekeeper import Action, admit
from coordinator.lifecycle import abandon_round, commit_round
from coordinator.metrics import Metrics
from coordinator.records import TaskRow
from coordinator.rounds import TERMINAL, RoundState
from coordinator.secure_records import load_record, round_params, store_record
from secagg import encoding, phases
from secagg.errors import SecAggError
from secagg.updates import mean_from_ring
from wire.protocol import SECAGG_PHASES

logger = logging.getLogger(__name__)

_OPEN = {
    "advertise_keys": phases.Phase.ADVERTISE,
    "share_keys": phases.Phase.SHARE,
    "masked_input": phases.Phase.INPUT,
    "unmask": phases.Phase.UNMASK,
}
_AFTER = list(phases.Phase)


def settle(conn: Connection, task: TaskRow, round_row: sa.Row, now: float, metrics: Metrics) -> bool:
    """Close a due phase; commit the round on an unmasked sum, abandon it if the protocol was. True if it closed.

    The caller holds the task, sum and round locks (``coordinator.db``'s order); the secure row is locked last.
    """
    r = round_row._mapping
    record = load_record(conn, r["id"], lock=True)
    moved = phases.advance(record, now)
    if moved is not record:
        store_record(conn, r["id"], moved)
    if moved.phase is phases.Phase.ABANDONED:
        _abandon(conn, task, round_row, moved, now, metrics)
        return True
    if moved.phase is not phases.Phase.DONE or moved.total is None or moved.state is None:
        return False
    count = len(moved.state.received)
    if count < (task.config.min_reports or task.config.goal_count):
        abandon_round(conn, task, round_row, now, metrics)
        return True
    _, spec = round_params(task, r["number"])
    try:
        mean = mean_from_ring(moved.total, count, task.shapes, spec)  # checks the sum first (secagg.bounds)
    except SecAggError as err:  # a sum no in-range inputs could make: abandon, never commit it
        refused = dataclasses.replace(moved, phase=phases.Phase.ABANDONED, total=None, reason=f"{err.reason}: {err}")
        store_record(conn, r["id"], refused)
        _abandon(conn, task, round_row, refused, now, metrics)
        return True
    acc = WeightedSum(task.shapes)
    acc.add(mean.tensors, mean.weight)  # the token-weighted mean, as a plain round's
    conn.execute(sa.update(rounds).where(rounds.c.id == r["id"]).values(received=count, weight_sum=mean.weight))
    fresh = conn.execute(sa.select(rounds).where(rounds.c.id == r["id"])).one()
    commit_round(conn, task, fresh, acc, now, metrics)
    return True


def _abandon(
    conn: Connection, task: TaskRow, round_row: sa.Row, record: phases.SecureRound, now: float, metrics: Metrics
) -> None:
    """Abandon the round; its secure record keeps the reason (devices see it), the log names it too."""
    logger.warning("secure round %d of %s abandoned: %s", round_row._mapping["number"], task.population, record.reason)
    abandon_round(conn, task, round_row, now, metrics)


class SecureRounds:
    """What devices do in a secure round: post each phase's message, fetch each phase's download."""

    def __init__(self, db: Database, *, clock: Callable[[], float], tick: Callable[[int, float], None]) -> None:
        self.db = db
        self.clock = clock
        self.tick = tick

    def _session(self, conn: Connection, session_id: str, token: str | None) -> tuple[int, int, int, str]:
        """(device, round id, task id, round state) of an authorized session."""
        round_id = admit(conn, session_id, token, Action.SECAGG).round_id  # the one policy: coordinator.gatekeeper
        device = conn.execute(
            sa.select(secagg_devices.c.device).where(secagg_devices.c.session_id == session_id)
        ).scalar()
        if device is None:
            raise UpdateRejected("not_secure", f"session {session_id!r} is not in a secure round")
        task_id, state = conn.execute(sa.select(rounds.c.task_id, rounds.c.state).where(rounds.c.id == round_id)).one()
        return int(device), round_id, int(task_id), str(state)

    def submit(self, session_id: str, token: str | None, phase: str, body: bytes) -> None:
        """Add the device's message of ``phase`` to the round (refusals: UpdateRejected naming why)."""
        if phase not in SECAGG_PHASES:
            raise UpdateRejected("unknown_phase", f"unknown phase {phase!r}; expected one of {SECAGG_PHASES}")
        now = self.clock()
        with self.db.write() as conn:
            device, round_id, task_id, state = self._session(conn, session_id, token)
            if RoundState(state) in TERMINAL:
                raise UpdateRejected("round_closed", f"the round is {state}")
            record = phases.advance(load_record(conn, round_id, lock=True), now)
            try:
                record = _apply(record, phase, device, body, now)
            except SecAggError as err:
                raise UpdateRejected(_reason(err), str(err)) from err
            store_record(conn, round_id, record)
        if record.phase in (phases.Phase.DONE, phases.Phase.ABANDONED):
            self.tick(task_id, now)

    def fetch(self, session_id: str, token: str | None, phase: str) -> bytes:
        """What the device needs to answer ``phase``: adverts (share_keys), its shares (masked_input), the request."""
        if phase not in ("share_keys", "masked_input", "unmask"):
            raise UpdateRejected("unknown_phase", f"nothing to fetch for phase {phase!r}")
        with self.db.read() as conn:
            device, round_id, _task_id, state = self._session(conn, session_id, token)
            record = load_record(conn, round_id, lock=False)
        if record.phase is phases.Phase.ABANDONED or RoundState(state) is RoundState.ABANDONED:
            raise UpdateRejected("round_abandoned", f"the secure round was abandoned: {record.reason or state}")
        if _AFTER.index(record.phase) < _AFTER.index(_OPEN[phase]) or record.state is None:
            raise UpdateRejected("phase_not_open", f"{phase} has not opened yet (round is in {record.phase.value})")
        if phase == "share_keys":
            return encoding.encode_adverts(list(record.state.adverts.values()))
        if device not in record.state.shared:
            raise UpdateRejected("dropped", f"device {device} did not share keys in time")
        if phase == "masked_input":
            return encoding.encode_shares(record.state.inbox[device])
        return encoding.encode_request(record.request)


def _apply(record: phases.SecureRound, phase: str, device: int, body: bytes, now: float) -> phases.SecureRound:
    if phase == "advertise_keys":
        advert = encoding.decode_advert(body)
        _same(advert.device, device)
        return phases.submit_advert(record, advert, now)
    if phase == "share_keys":
        shares = encoding.decode_shares(body)
        return phases.submit_shares(record, device, shares, now)
    if phase == "masked_input":
        item = encoding.decode_input(body, length=record.params.length)
        _same(item.device, device)
        return phases.submit_input(record, item, now)
    response = encoding.decode_response(body)
    _same(response.device, device)
    return phases.submit_unmask(record, response, now)


def _same(claimed: int, device: int) -> None:
    if claimed != device:
        raise SecAggError("bad_message", f"message names device {claimed}, the session is device {device}")


def _reason(err: SecAggError) -> str:
    return "phase_closed" if err.reason == "wrong_phase" else "secagg_invalid"
