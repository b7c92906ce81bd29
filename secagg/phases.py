"""The server's phase clock: which phase is open, until when, and closing it.

A transport (the coordinator's HTTP routes) stores this record and feeds it
the messages that arrive; every phase closes when all expected devices have
answered or at its deadline, whichever comes first, and closing it runs the
matching ``secagg.server`` step (Bonawitz et al. 2017, §4: "the server waits
for at least t messages ... until a timeout"). A phase that closes with fewer
than ``threshold`` devices, or an unmasking that cannot rebuild every needed
secret, abandons the round: the record keeps the reason and never a partial
sum. Pure: the time is always passed in.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

import numpy as np

from secagg import server
from secagg.errors import SecAggError
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse


class Phase(enum.Enum):
    """The phases in order, then the two ends."""

    ADVERTISE = "advertise_keys"
    SHARE = "share_keys"
    INPUT = "masked_input"
    UNMASK = "unmask"
    DONE = "done"
    ABANDONED = "abandoned"


_NEXT = {Phase.ADVERTISE: Phase.SHARE, Phase.SHARE: Phase.INPUT, Phase.INPUT: Phase.UNMASK, Phase.UNMASK: Phase.DONE}


@dataclasses.dataclass(frozen=True)
class PhaseDeadlines:
    """Seconds each phase stays open at most (masked input is the long one: devices train first)."""

    advertise_s: float = 60.0
    share_s: float = 60.0
    input_s: float = 600.0
    unmask_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("advertise_s", "share_s", "input_s", "unmask_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"PhaseDeadlines.{name} must be a positive number of seconds, got {value!r}")

    def seconds(self, phase: Phase) -> float:
        """How long ``phase`` stays open."""
        return {
            Phase.ADVERTISE: self.advertise_s,
            Phase.SHARE: self.share_s,
            Phase.INPUT: self.input_s,
            Phase.UNMASK: self.unmask_s,
        }[phase]


@dataclasses.dataclass(frozen=True)
class SecureRound:
    """One secure round as the server keeps it between requests."""

    params: RoundParams
    deadlines: PhaseDeadlines
    phase: Phase
    closes_at: float
    state: server.ServerState | None = None  # after advertise keys closed
    adverts: dict[int, AdvertiseKeys] = dataclasses.field(default_factory=dict)
    bundles: dict[int, tuple[EncryptedShare, ...]] = dataclasses.field(default_factory=dict)
    responses: dict[int, UnmaskResponse] = dataclasses.field(default_factory=dict)
    total: np.ndarray | None = None  # (length,) uint32, only once DONE
    reason: str = ""  # why it was abandoned

    @property
    def request(self) -> UnmaskRequest:
        """The unmask request (SecAggError("wrong_phase") before masked input closed)."""
        if self.state is None or self.phase not in (Phase.UNMASK, Phase.DONE):
            raise SecAggError("wrong_phase", f"no unmask request in phase {self.phase.value}")
        return server.unmask_request(self.state)


def open_round(params: RoundParams, deadlines: PhaseDeadlines, now: float) -> SecureRound:
    """A round in its first phase, advertise keys."""
    return SecureRound(params, deadlines, Phase.ADVERTISE, now + deadlines.advertise_s)


def _check_open(r: SecureRound, phase: Phase, device: int, now: float) -> None:
    r.params.check_device(device)
    if r.phase is not phase or now >= r.closes_at:
        raise SecAggError("wrong_phase", f"{phase.value} is not open (round is in {r.phase.value})")


def submit_advert(r: SecureRound, advert: AdvertiseKeys, now: float) -> SecureRound:
    """Phase 0: keep a device's public keys (one advert per device, keys of 32 bytes)."""
    _check_open(r, Phase.ADVERTISE, advert.device, now)
    if len(advert.c_public) != 32 or len(advert.s_public) != 32 or len(advert.b_commitment) != 32:
        raise SecAggError("bad_message", f"device {advert.device}'s public keys or commitment are not 32 bytes")
    if advert.device in r.adverts:
        raise SecAggError("bad_message", f"device {advert.device} already advertised")
    return _maybe_close(dataclasses.replace(r, adverts={**r.adverts, advert.device: advert}), now)


def submit_shares(r: SecureRound, device: int, bundle: Sequence[EncryptedShare], now: float) -> SecureRound:
    """Phase 1: keep a device's encrypted shares (one per advertised neighbour)."""
    _check_open(r, Phase.SHARE, device, now)
    if r.state is None or device in r.bundles:
        raise SecAggError("bad_message", f"device {device} already shared keys")
    server.check_bundle(r.state, device, bundle)
    return _maybe_close(dataclasses.replace(r, bundles={**r.bundles, device: tuple(bundle)}), now)


def submit_input(r: SecureRound, item: MaskedInput, now: float) -> SecureRound:
    """Phase 2: add a device's masked input to the running sum (inputs are never kept one by one)."""
    _check_open(r, Phase.INPUT, item.device, now)
    if r.state is None:
        raise SecAggError("wrong_phase", "masked input before keys were shared")
    return _maybe_close(dataclasses.replace(r, state=server.add_input(r.state, item)), now)


def submit_unmask(r: SecureRound, response: UnmaskResponse, now: float) -> SecureRound:
    """Phase 3: keep a survivor's shares."""
    _check_open(r, Phase.UNMASK, response.device, now)
    if r.state is None or response.device in r.responses:
        raise SecAggError("bad_message", f"device {response.device} already answered")
    server.check_response(r.state, r.request, response)
    return _maybe_close(dataclasses.replace(r, responses={**r.responses, response.device: response}), now)


def _everyone_answered(r: SecureRound) -> bool:
    if r.phase is Phase.ADVERTISE:
        return len(r.adverts) == r.params.n
    if r.phase is Phase.SHARE:
        return r.bundles.keys() == r.adverts.keys()
    if r.phase is Phase.INPUT:
        return r.state is not None and r.state.received == r.state.shared
    if r.phase is Phase.UNMASK:
        return r.responses.keys() == r.request.survivors
    return False


def _maybe_close(r: SecureRound, now: float) -> SecureRound:
    return _close(r, now) if _everyone_answered(r) else r


def advance(r: SecureRound, now: float) -> SecureRound:
    """Close the open phase if its deadline passed (the round clock calls this); otherwise unchanged."""
    if r.phase in (Phase.DONE, Phase.ABANDONED) or now < r.closes_at:
        return r
    return _close(r, now)


def _close(r: SecureRound, now: float) -> SecureRound:
    """Run the server step of the open phase and open the next one, or abandon the round."""
    state = r.state
    try:
        if state is None:  # advertise keys
            r = dataclasses.replace(r, state=server.collect_adverts(r.params, r.adverts.values()))
        elif r.phase is Phase.SHARE:
            r = dataclasses.replace(r, state=server.route_shares(state, r.bundles), bundles={})  # now in the inbox
        elif r.phase is Phase.INPUT:
            r = dataclasses.replace(r, state=server.collect_inputs(state, ()))
        else:  # unmask
            total = server.unmask_sum(state, r.responses.values())
            return dataclasses.replace(r, phase=Phase.DONE, closes_at=now, total=total)
    except SecAggError as err:
        return dataclasses.replace(r, phase=Phase.ABANDONED, closes_at=now, reason=f"{err.reason}: {err}")
    following = _NEXT[r.phase]
    return dataclasses.replace(r, phase=following, closes_at=now + r.deadlines.seconds(following))
