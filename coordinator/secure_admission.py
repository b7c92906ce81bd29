"""Admission of a secure-aggregation POST: authenticate, then bound the body by what the phase can hold.

Issue 14 point 6: the phase routes read up to 256 MiB before anyone checked the
session. Now the route asks :func:`admit_phase` first (one read transaction:
the gatekeeper, then the round's public parameters) and reads at most
:func:`phase_body_bound` bytes, as the plain upload route does. The bounds are
the ``secagg.encoding`` layouts with room to spare (a ciphertext may grow by
its AEAD nonce and tag), never the server-wide upload limit.
"""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.aggregators import for_task
from coordinator.db import Database, rounds
from coordinator.errors import SessionError
from coordinator.gatekeeper import Action, admit
from coordinator.records import load_task_by_id
from secagg.encoding import ADVERT_BYTES
from secagg.messages import RoundParams
from secagg.shamir import SHARE_BYTES
from wire.protocol import SECAGG_PHASES

_U32 = 4
_CIPHERTEXT_MAX = 1024  # one neighbour's encrypted pair of shares is ~170 bytes (nonce + 2 x 66 + tag)


def phase_body_bound(params: RoundParams, phase: str) -> int:
    """The most bytes a well-formed message of ``phase`` can take in a round with ``params``."""
    k = params.k  # neighbours of a device
    if phase == "advertise_keys":  # device, two public keys, the self-seed commitment
        return ADVERT_BYTES
    if phase == "share_keys":  # count, then (source, target, length, ciphertext) a neighbour
        return _U32 + k * (3 * _U32 + _CIPHERTEXT_MAX)
    if phase == "masked_input":  # device, length, length uint32
        return 2 * _U32 + _U32 * params.length
    if phase == "unmask":  # device, then two maps of (owner, share) over at most the neighbours
        return _U32 + 2 * (_U32 + k * (_U32 + SHARE_BYTES))
    raise SessionError("unknown_phase", f"unknown phase {phase!r}; expected one of {SECAGG_PHASES}")


def admit_phase(db: Database, session_id: str, token: str | None, phase: str) -> int:
    """The body bound of ``phase`` for an authorized session (SessionError otherwise), before any body is read."""
    if phase not in SECAGG_PHASES:
        raise SessionError("unknown_phase", f"unknown phase {phase!r}; expected one of {SECAGG_PHASES}")
    with db.read() as conn:
        session = admit(conn, session_id, token, Action.SECAGG)
        task_id, number = conn.execute(
            sa.select(rounds.c.task_id, rounds.c.number).where(rounds.c.id == session.round_id)
        ).one()
        task = load_task_by_id(conn, task_id)
    params = for_task(task).phase_params(task, number)
    if params is None:
        raise SessionError("not_secure", "the session is not in a secure round")
    return phase_body_bound(params, phase)
