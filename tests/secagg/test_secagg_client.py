from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg import client, server
from secagg.errors import SecAggError
from secagg.messages import RoundParams, UnmaskRequest

PARAMS = RoundParams(round=1, round_seed=2, n=6, length=8, threshold=4)
X = np.arange(8, dtype=np.uint32)


def _shared() -> tuple[dict[int, client.ClientState], server.ServerState]:
    states, adverts = {}, []
    for i in range(PARAMS.n):
        states[i], advert = client.advertise(PARAMS, i)
        adverts.append(advert)
    srv = server.collect_adverts(PARAMS, adverts)
    bundles = {}
    for i in range(PARAMS.n):
        states[i], bundles[i] = client.share_keys(PARAMS, states[i], adverts)
    return states, server.route_shares(srv, bundles)


def _after_input() -> client.ClientState:
    states, srv = _shared()
    state, _ = client.masked_input(PARAMS, states[0], srv.inbox[0], X)
    return state


def test_advertise_unknown_device_refused() -> None:
    with pytest.raises(SecAggError, match="not in this round"):
        client.advertise(PARAMS, 6)


def test_share_keys_too_few_neighbours_refused() -> None:
    state, advert = client.advertise(PARAMS, 0)
    others = [client.advertise(PARAMS, i)[1] for i in (1, 2)]
    with pytest.raises(SecAggError) as err:
        client.share_keys(PARAMS, state, [advert, *others])
    assert err.value.reason == "below_threshold"


def test_share_keys_repeated_public_key_refused() -> None:
    state, _ = client.advertise(PARAMS, 0)
    adverts = [client.advertise(PARAMS, i)[1] for i in range(1, 6)]
    adverts[1] = dataclasses.replace(adverts[1], c_public=adverts[0].c_public)
    with pytest.raises(SecAggError, match="equal"):
        client.share_keys(PARAMS, state, adverts)


def test_masked_input_tampered_share_refused() -> None:
    states, srv = _shared()
    inbox = list(srv.inbox[0])
    bad = inbox[0].ciphertext[:-1] + bytes([inbox[0].ciphertext[-1] ^ 1])
    inbox[0] = dataclasses.replace(inbox[0], ciphertext=bad)
    with pytest.raises(SecAggError, match="does not decrypt"):
        client.masked_input(PARAMS, states[0], inbox, X)


def test_masked_input_share_for_someone_else_refused() -> None:
    states, srv = _shared()
    with pytest.raises(SecAggError, match="not for device 0"):
        client.masked_input(PARAMS, states[0], srv.inbox[1], X)


def test_masked_input_duplicate_share_refused() -> None:
    states, srv = _shared()
    with pytest.raises(SecAggError, match="two shares"):
        client.masked_input(PARAMS, states[0], [*srv.inbox[0], srv.inbox[0][0]], X)


@pytest.mark.parametrize("x", [np.zeros(7, np.uint32), np.zeros(8, np.int64), np.zeros((2, 4), np.uint32)])
def test_masked_input_wrong_vector_refused(x: np.ndarray) -> None:
    states, srv = _shared()
    with pytest.raises(SecAggError, match="uint32"):
        client.masked_input(PARAMS, states[0], srv.inbox[0], x)


def test_unmask_before_input_refused() -> None:
    states, _ = _shared()
    with pytest.raises(SecAggError, match="sent no input"):
        client.unmask(PARAMS, states[0], UnmaskRequest(frozenset(range(6)), frozenset()))


@pytest.mark.parametrize(
    ("survivors", "dropped", "reason"),
    [
        ({0, 1, 2, 3, 4}, {4, 5}, "inconsistent"),  # 4 both ways: both its secrets would come out
        ({1, 2, 3, 4, 5}, set(), "inconsistent"),  # our own input left out
        ({0, 1, 2}, {3, 4, 5}, "below_threshold"),
        ({0, 1, 2, 3}, {4}, "inconsistent"),  # neighbour 5 unaccounted for
    ],
)
def test_unmask_unsafe_request_refused(survivors: set[int], dropped: set[int], reason: str) -> None:
    state = _after_input()
    with pytest.raises(SecAggError) as err:
        client.unmask(PARAMS, state, UnmaskRequest(frozenset(survivors), frozenset(dropped)))
    assert err.value.reason == reason


def test_unmask_reveals_one_secret_per_neighbour() -> None:
    state = _after_input()
    response = client.unmask(PARAMS, state, UnmaskRequest(frozenset({0, 1, 2, 3}), frozenset({4, 5})))
    assert set(response.self_shares) == {1, 2, 3} and set(response.key_shares) == {4, 5}
