from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg import client, server
from secagg.errors import SecAggError
from secagg.messages import EncryptedShare, MaskedInput, RoundParams, UnmaskResponse

PARAMS = RoundParams(round=1, round_seed=2, n=6, length=8, threshold=4)


def _round(
    dropped_input: frozenset[int] = frozenset(),
) -> tuple[dict[int, client.ClientState], server.ServerState, dict[int, list[EncryptedShare]]]:
    states, adverts = {}, []
    for i in range(PARAMS.n):
        states[i], advert = client.advertise(PARAMS, i)
        adverts.append(advert)
    srv = server.collect_adverts(PARAMS, adverts)
    bundles = {}
    for i in range(PARAMS.n):
        states[i], bundles[i] = client.share_keys(PARAMS, states[i], adverts)
    srv = server.route_shares(srv, bundles)
    inputs = []
    for i in range(PARAMS.n):
        if i not in dropped_input:
            states[i], item = client.masked_input(PARAMS, states[i], srv.inbox[i], np.full(8, i, np.uint32))
            inputs.append(item)
    return states, server.collect_inputs(srv, inputs), bundles


def test_collect_adverts_duplicate_or_unknown_refused() -> None:
    _, a = client.advertise(PARAMS, 0)
    with pytest.raises(SecAggError, match="twice"):
        server.collect_adverts(PARAMS, [a, a])
    with pytest.raises(SecAggError, match="not in this round"):
        server.collect_adverts(PARAMS, [dataclasses.replace(a, device=9)])


def test_collect_adverts_below_threshold_abandons_round() -> None:
    with pytest.raises(SecAggError) as err:
        server.collect_adverts(PARAMS, [client.advertise(PARAMS, i)[1] for i in range(3)])
    assert err.value.reason == "below_threshold"


def test_route_shares_malformed_bundles_refused() -> None:
    _, srv, bundles = _round()
    fresh = server.ServerState(PARAMS, adverts=srv.adverts)
    with pytest.raises(SecAggError, match="exactly its advertised neighbours"):
        server.route_shares(fresh, {**bundles, 0: bundles[0][:-1]})
    with pytest.raises(SecAggError, match="malformed"):
        server.route_shares(fresh, {**bundles, 0: [*bundles[0], bundles[0][0]]})
    with pytest.raises(SecAggError, match="malformed"):
        server.route_shares(fresh, {**bundles, 0: bundles[1]})
    with pytest.raises(SecAggError, match="without advertising"):
        server.route_shares(server.ServerState(PARAMS, adverts={i: srv.adverts[i] for i in range(5)}), {5: bundles[5]})


def test_collect_inputs_bad_inputs_refused() -> None:
    _, collected, _ = _round()
    srv = dataclasses.replace(collected, received=frozenset(), masked_sum=None)  # before any input
    with pytest.raises(SecAggError, match="two inputs"):
        server.collect_inputs(srv, [MaskedInput(0, np.zeros(8, np.uint32))] * 2)
    with pytest.raises(SecAggError, match="input is"):
        server.collect_inputs(srv, [MaskedInput(0, np.zeros(8, np.float32))])
    with pytest.raises(SecAggError) as err:
        server.collect_inputs(srv, [MaskedInput(i, np.zeros(8, np.uint32)) for i in range(3)])
    assert err.value.reason == "below_threshold"
    with pytest.raises(SecAggError, match="two inputs"):
        server.add_input(collected, MaskedInput(0, np.zeros(8, np.uint32)))


def test_unmask_request_never_names_a_device_both_ways() -> None:
    _, srv, _ = _round(dropped_input=frozenset({1, 4}))
    request = server.unmask_request(srv)
    assert request.survivors == {0, 2, 3, 5} and request.dropped == {1, 4}


def test_unmask_sum_refuses_a_response_revealing_both_secrets() -> None:
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    responses = [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)]
    leak = dataclasses.replace(responses[0], key_shares={**responses[0].key_shares, 2: 5})
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, [leak, *responses[1:]])
    assert err.value.reason == "inconsistent"


def test_unmask_sum_unrecoverable_with_too_few_shares() -> None:
    params = RoundParams(round=1, round_seed=2, n=6, length=8, threshold=4, share_threshold=5)
    states, adverts = {}, []
    for i in range(6):
        states[i], advert = client.advertise(params, i)
        adverts.append(advert)
    srv = server.collect_adverts(params, adverts)
    bundles = {}
    for i in range(6):
        states[i], bundles[i] = client.share_keys(params, states[i], adverts)
    srv = server.route_shares(srv, bundles)
    items = []
    for i in range(6):
        states[i], item = client.masked_input(params, states[i], srv.inbox[i], np.zeros(8, np.uint32))
        items.append(item)
    srv = server.collect_inputs(srv, items)
    request = server.unmask_request(srv)
    responses = [client.unmask(params, states[i], request) for i in range(4)]  # 4 answers, t_share 5
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, responses)
    assert err.value.reason == "unrecoverable"


def test_unmask_sum_wrong_key_shares_refused() -> None:
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    responses = [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)]
    forged = [dataclasses.replace(r, key_shares={1: 12345}) for r in responses]
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, forged)
    assert err.value.reason == "bad_shares"


def test_unmask_sum_unexpected_responder_refused() -> None:
    _, srv, _ = _round(dropped_input=frozenset({1}))
    with pytest.raises(SecAggError, match="unexpected"):
        server.unmask_sum(srv, [UnmaskResponse(1, {}, {})])


def test_unmask_sum_exact() -> None:
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    total = server.unmask_sum(srv, [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)])
    assert total.tolist() == [0 + 2 + 3 + 4 + 5] * 8


def test_unmask_sum_self_seed_share_off_by_one_refused() -> None:
    # issue 14 point 3: one holder's share off by +1 used to unmask to a garbage sum without error.
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    responses = [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)]
    bad = responses[0]
    owner = min(bad.self_shares)
    responses[0] = dataclasses.replace(bad, self_shares={**bad.self_shares, owner: bad.self_shares[owner] + 1})
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, responses)
    assert err.value.reason == "bad_shares" and "polynomial" in str(err.value)


def test_unmask_sum_consistent_wrong_self_seed_refused_by_commitment() -> None:
    # Shares that agree on a wrong seed (here all equal: the constant polynomial) pass the
    # polynomial check; the seed's commitment from the advert catches them.
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    responses = [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)]
    forged = [dataclasses.replace(r, self_shares={**r.self_shares, 2: 777}) if 2 in r.self_shares else r
              for r in responses]  # fmt: skip
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, forged)
    assert err.value.reason == "bad_shares" and "device 2's self-mask seed do not match" in str(err.value)


def test_unmask_sum_mask_key_share_off_by_one_refused() -> None:
    states, srv, _ = _round(dropped_input=frozenset({1}))
    request = server.unmask_request(srv)
    responses = [client.unmask(PARAMS, states[i], request) for i in sorted(request.survivors)]
    holder = next(k for k, r in enumerate(responses) if 1 in r.key_shares)
    bad = responses[holder]
    responses[holder] = dataclasses.replace(bad, key_shares={1: bad.key_shares[1] + 1})
    with pytest.raises(SecAggError) as err:
        server.unmask_sum(srv, responses)
    assert err.value.reason == "bad_shares"
