from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg import client
from secagg.errors import SecAggError
from secagg.messages import AdvertiseKeys, RoundParams
from secagg.phases import (
    Phase,
    PhaseDeadlines,
    SecureRound,
    advance,
    open_round,
    submit_advert,
    submit_input,
    submit_shares,
    submit_unmask,
)

PARAMS = RoundParams(round=3, round_seed=4, n=8, length=16, threshold=5)
DEADLINES = PhaseDeadlines(advertise_s=10, share_s=10, input_s=100, unmask_s=10)
X = {i: np.full(16, i + 1, np.uint32) for i in range(8)}


def _to_input_phase(
    silent_in_share: frozenset[int] = frozenset(),
) -> tuple[SecureRound, dict[int, client.ClientState]]:
    r = open_round(PARAMS, DEADLINES, now=0.0)
    states = {}
    for i in range(8):
        states[i], advert = client.advertise(PARAMS, i)
        r = submit_advert(r, advert, now=1.0)
    assert r.phase is Phase.SHARE and r.closes_at == 11.0  # everyone advertised: closed early
    assert r.state is not None
    for i in range(8):
        if i not in silent_in_share:
            states[i], bundle = client.share_keys(PARAMS, states[i], r.state.adverts.values())
            r = submit_shares(r, i, bundle, now=2.0)
    if silent_in_share:
        assert r.phase is Phase.SHARE
        r = advance(r, now=12.0)
    assert r.phase is Phase.INPUT
    return r, states


def _send_inputs(
    r: SecureRound, states: dict[int, client.ClientState], devices: range | list[int], now: float
) -> SecureRound:
    assert r.state is not None
    for i in devices:
        states[i], item = client.masked_input(PARAMS, states[i], r.state.inbox[i], X[i])
        r = submit_input(r, item, now)
    return r


def test_phases_all_devices_answer_round_done_early() -> None:
    r, states = _to_input_phase()
    r = _send_inputs(r, states, range(8), now=3.0)
    assert r.phase is Phase.UNMASK
    for i in range(8):
        r = submit_unmask(r, client.unmask(PARAMS, states[i], r.request), now=4.0)
    assert r.phase is Phase.DONE and r.total is not None
    assert r.total.tolist() == [sum(range(1, 9))] * 16


def test_phases_deadline_closes_input_and_drops_are_recovered() -> None:
    r, states = _to_input_phase(silent_in_share=frozenset({7}))
    r = _send_inputs(r, states, [0, 1, 2, 3, 4], now=3.0)
    assert advance(r, now=50.0) is r  # before the deadline nothing moves
    r = advance(r, now=112.0)
    assert r.phase is Phase.UNMASK and r.request.dropped == {5, 6}
    for i in (0, 1, 2, 3, 4):
        r = submit_unmask(r, client.unmask(PARAMS, states[i], r.request), now=113.0)
    assert r.phase is Phase.DONE and r.total is not None
    assert r.total.tolist() == [1 + 2 + 3 + 4 + 5] * 16


def test_phases_below_threshold_abandoned_without_a_sum() -> None:
    r, states = _to_input_phase()
    r = _send_inputs(r, states, [0, 1, 2, 3], now=3.0)
    r = advance(r, now=200.0)
    assert r.phase is Phase.ABANDONED and r.total is None
    assert r.reason.startswith("below_threshold")
    with pytest.raises(SecAggError) as err:
        _ = r.request
    assert err.value.reason == "wrong_phase"


def test_phases_too_few_unmask_answers_abandoned() -> None:
    r, states = _to_input_phase()
    r = _send_inputs(r, states, range(8), now=3.0)
    for i in range(4):
        r = submit_unmask(r, client.unmask(PARAMS, states[i], r.request), now=4.0)
    r = advance(r, now=20.0)
    assert r.phase is Phase.ABANDONED and r.total is None


def test_phases_message_for_a_closed_phase_refused() -> None:
    r, _ = _to_input_phase()
    _, advert = client.advertise(PARAMS, 0)
    with pytest.raises(SecAggError) as err:
        submit_advert(r, advert, now=3.0)
    assert err.value.reason == "wrong_phase"
    r0 = open_round(PARAMS, DEADLINES, now=0.0)
    with pytest.raises(SecAggError) as err:
        submit_advert(r0, advert, now=10.0)  # at the deadline: too late
    assert err.value.reason == "wrong_phase"


def test_phases_bad_messages_refused_round_goes_on() -> None:
    r = open_round(PARAMS, DEADLINES, now=0.0)
    states = {}
    adverts: list[AdvertiseKeys] = []
    for i in range(8):
        states[i], advert = client.advertise(PARAMS, i)
        adverts.append(advert)
    r = submit_advert(r, adverts[0], now=1.0)
    with pytest.raises(SecAggError, match="already advertised"):
        submit_advert(r, adverts[0], now=1.0)
    with pytest.raises(SecAggError, match="32 bytes"):
        submit_advert(r, dataclasses.replace(adverts[1], c_public=b"x"), now=1.0)
    with pytest.raises(SecAggError, match="not in this round"):
        submit_advert(r, dataclasses.replace(adverts[1], device=8), now=1.0)
    for a in adverts[1:]:
        r = submit_advert(r, a, now=1.0)
    assert r.state is not None
    states[0], bundle = client.share_keys(PARAMS, states[0], r.state.adverts.values())
    with pytest.raises(SecAggError, match="exactly its advertised neighbours"):
        submit_shares(r, 0, bundle[1:], now=2.0)
    r = submit_shares(r, 0, bundle, now=2.0)
    with pytest.raises(SecAggError, match="already shared"):
        submit_shares(r, 0, bundle, now=2.0)
    assert r.phase is Phase.SHARE


@pytest.mark.parametrize("field", ["advertise_s", "share_s", "input_s", "unmask_s"])
def test_phase_deadlines_bad_values_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PhaseDeadlines(**{field: 0.0})
