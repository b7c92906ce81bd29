"""The device's side of a secure-aggregation round, over any transport.

The four client steps of ``secagg`` (Bonawitz et al. 2017; SecAgg+ neighbours
of Bell et al. 2020) in order: advertise keys, share keys, masked input,
unmask. The device trains between sharing keys and sending its input, maps
its delta to the ring (``secagg.updates``: clipped, quantized on the round's
shared grid) and only ever uploads the masked vector. The transport moves the
messages and waits for the coordinator's phase changes; an HTTP transport
implements it on the coordinator's routes, tests on ``secagg.phases`` in
memory. A device that stops at any point (killed, ineligible, out of time) is
a dropout the protocol absorbs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from secagg import client
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse
from secagg.ring import RingSpec
from secagg.updates import delta_to_ring

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
    train: Callable[[], Sequence[np.ndarray]],
    rng: np.random.Generator,
) -> None:
    """Run all four phases for one device; ``train`` returns the float32 delta (weight order).

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
    vector = delta_to_ring(train(), assignment.spec, rng)  # (length,) uint32
    state, item = client.masked_input(params, state, inbox, vector)
    transport.send_input(item)
    transport.send_unmask(client.unmask(params, state, transport.wait_unmask_request()))
    logger.debug("secure session of device %d done", me)
