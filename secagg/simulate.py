"""All four phases in one process: the reference driver for tests, benchmarks and simulation.

Runs the client and server steps for every device of a round, with devices
dropping out at chosen phases, exactly as the HTTP transport would sequence them
(Bonawitz et al. 2017, Figure 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from secagg import client, server
from secagg.messages import RoundParams


@dataclasses.dataclass(frozen=True)
class Dropouts:
    """Devices that go silent before a phase: before sharing keys, before their input, before unmasking."""

    before_share: frozenset[int] = frozenset()
    before_input: frozenset[int] = frozenset()
    before_unmask: frozenset[int] = frozenset()


def run_round(params: RoundParams, inputs: Mapping[int, np.ndarray], dropouts: Dropouts = Dropouts()) -> np.ndarray:
    """The ring sum of the inputs of devices that sent one; SecAggError if the round must be abandoned.

    ``inputs``: device id -> ``(length,) uint32``, one per device of the round.
    """
    states: dict[int, client.ClientState] = {}
    adverts = []
    for device in sorted(inputs):
        states[device], advert = client.advertise(params, device)
        adverts.append(advert)
    state = server.collect_adverts(params, adverts)
    bundles = {}
    for device in sorted(state.adverts):
        if device in dropouts.before_share:
            continue
        states[device], bundles[device] = client.share_keys(params, states[device], state.adverts.values())
    state = server.route_shares(state, bundles)
    masked = []
    for device in sorted(state.shared):
        if device in dropouts.before_input:
            continue
        states[device], item = client.masked_input(params, states[device], state.inbox[device], inputs[device])
        masked.append(item)
    state = server.collect_inputs(state, masked)
    request = server.unmask_request(state)
    responses = [
        client.unmask(params, states[d], request) for d in sorted(request.survivors) if d not in dropouts.before_unmask
    ]
    return server.unmask_sum(state, responses)
