"""The device's side of a secure-aggregation round, over any transport.

The four client steps of ``secagg`` (Bonawitz et al. 2017; SecAgg+ neighbours
of Bell et al. 2020) in order: advertise keys, share keys, masked input,
unmask. The device trains between sharing keys and sending its input, maps
its delta and token weight to the ring (``secagg.updates``: clipped, scaled by
the weight, quantized on the round's shared grid) and only ever uploads the
masked vector. The transport moves the
messages and waits for the coordinator's phase changes; an HTTP transport
implements it on the coordinator's routes, tests on ``secagg.phases`` in
memory. A device that stops at any point (killed, ineligible, out of time) is
a dropout the protocol absorbs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from device_runtime.client import CoordinatorClient, CoordinatorError
from secagg import client, encoding
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse
from secagg.ring import RingSpec
from secagg.updates import delta_to_ring
from wire.protocol import Assignment

logger = logging.getLogger(__name__)


class SecAggTransport(Protocol):
    """What a device sends and receives in a secure round; each ``wait_*`` returns once that phase opens."""

    def send_advert(self, advert: AdvertiseKeys) -> None: ...

    def wait_adverts(self) -> list[AdvertiseKeys]: ...

    def send_shares(self, device: int, shares: Sequence[EncryptedShare]) -> None: ...

    def wait_inbox(self, device: int) -> list[EncryptedShare]: ...

    def send_input(self, item: MaskedInput) -> None: ...

    def wait_unmask_request(self) -> UnmaskRequest: ...

    def send_unmask(self, response: UnmaskResponse) -> None: ...


@dataclasses.dataclass(frozen=True)
class SecureAssignment:
    """What the coordinator's assignment says about a secure round: the public parameters and our id."""

    params: RoundParams
    spec: RingSpec
    device: int

    def __post_init__(self) -> None:
        self.params.check_device(self.device)
        self.spec.check_devices(self.params.n)


def run_secure_session(
    transport: SecAggTransport,
    assignment: SecureAssignment,
    train: Callable[[], tuple[Sequence[np.ndarray], float]],
    rng: np.random.Generator,
) -> None:
    """Run all four phases for one device; ``train`` returns the float32 delta (weight order) and its token weight.

    ``rng`` drives the stochastic rounding only (named seed from the session);
    keys and self-mask seeds come from the OS CSPRNG inside ``secagg``.
    Raises ``secagg.SecAggError`` when the device must refuse (too few neighbours,
    an unsafe unmask request): the round then goes on without it, or is abandoned.
    """
    params, me = assignment.params, assignment.device
    state, advert = client.advertise(params, me)
    transport.send_advert(advert)
    state, shares = client.share_keys(params, state, transport.wait_adverts())
    transport.send_shares(me, shares)
    inbox = transport.wait_inbox(me)
    delta, weight = train()
    vector = delta_to_ring(delta, weight, assignment.spec, rng)  # (length,) uint32: [weight, weighted delta]
    state, item = client.masked_input(params, state, inbox, vector)
    transport.send_input(item)
    transport.send_unmask(client.unmask(params, state, transport.wait_unmask_request()))
    logger.debug("secure session of device %d done", me)


class HttpSecAggTransport:
    """``SecAggTransport`` over the coordinator's ``/v1/sessions/{id}/secagg/{phase}`` routes.

    Downloads that are not ready (409 ``phase_not_open``) are polled every
    ``poll_seconds`` until the session's deadline; any other refusal ends the
    session (``CoordinatorError``), e.g. ``round_abandoned``.
    """

    def __init__(
        self,
        client: CoordinatorClient,
        assignment: Assignment,
        *,
        poll_seconds: float = 0.5,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._session = assignment.session_id
        self._token = assignment.upload_token
        self._deadline = assignment.deadline_unix
        self._poll = poll_seconds
        self._now = wall_clock
        self._sleep = sleep

    def _post(self, phase: str, body: bytes) -> None:
        self._client.secagg_post(self._session, self._token, phase, body)

    def _get(self, phase: str) -> bytes:
        while True:
            try:
                return self._client.secagg_get(self._session, self._token, phase)
            except CoordinatorError as err:
                if err.reason != "phase_not_open" or self._now() + self._poll >= self._deadline:
                    raise
            self._sleep(self._poll)

    def send_advert(self, advert: AdvertiseKeys) -> None:
        self._post("advertise_keys", encoding.encode_advert(advert))

    def wait_adverts(self) -> list[AdvertiseKeys]:
        return encoding.decode_adverts(self._get("share_keys"))

    def send_shares(self, device: int, shares: Sequence[EncryptedShare]) -> None:
        self._post("share_keys", encoding.encode_shares(shares))

    def wait_inbox(self, device: int) -> list[EncryptedShare]:
        return encoding.decode_shares(self._get("masked_input"))

    def send_input(self, item: MaskedInput) -> None:
        self._post("masked_input", encoding.encode_input(item))

    def wait_unmask_request(self) -> UnmaskRequest:
        return encoding.decode_request(self._get("unmask"))

    def send_unmask(self, response: UnmaskResponse) -> None:
        self._post("unmask", encoding.encode_response(response))


def secure_assignment(assignment: Assignment) -> SecureAssignment:
    """The ``secagg`` parameters of an assignment with ``secure`` set (ValueError otherwise)."""
    s = assignment.secure
    if s is None:
        raise ValueError(f"assignment {assignment.session_id} is not in a secure round")
    params = RoundParams(round=assignment.round, round_seed=s.round_seed, n=s.devices, length=s.length,
                         threshold=s.threshold)  # fmt: skip
    return SecureAssignment(params, RingSpec(bits=s.bits, clip=s.clip, max_weight=s.max_weight), s.device)
