"""Secure rounds: the four ``secagg`` phases over the coordinator's database.

A task with ``secure_aggregation`` never sees an individual update: its devices
run Bonawitz et al. 2017's protocol with the SecAgg+ neighbour graph (Bell et
al. 2020) through ``/v1/sessions/{id}/secagg/{phase}``, and the server learns
only the ring sum of the masked inputs of at least ``threshold`` devices. The
round's ``secagg.phases.SecureRound`` lives in one row (``fk_secagg``, locked
per request); the round clock closes phases at their deadlines and, once the
sum is unmasked, checks it against what in-range inputs can sum to
(``secagg.bounds``) and turns it into the token-weighted mean delta that the
usual commit applies (``coordinator.aggregators.SecureAggregator``). A round
whose protocol is abandoned, or whose sum fails the check, is abandoned whole,
with the reason kept in its record.

Parameters and storage: ``coordinator.secure_records``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.db import Database, rounds, secagg_devices
from coordinator.errors import UpdateRejected
from coordinator.gatekeeper import Action, admit
from coordinator.rounds import TERMINAL, RoundState
from coordinator.secure_records import load_record, store_record
from secagg import encoding, phases
from secagg.errors import SecAggError
from wire.protocol import SECAGG_PHASES

logger = logging.getLogger(__name__)

_OPEN = {
    "advertise_keys": phases.Phase.ADVERTISE,
    "share_keys": phases.Phase.SHARE,
    "masked_input": phases.Phase.INPUT,
    "unmask": phases.Phase.UNMASK,
}
_AFTER = list(phases.Phase)


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
