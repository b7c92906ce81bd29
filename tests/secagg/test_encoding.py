from __future__ import annotations

import numpy as np
import pytest

from secagg import client, encoding, server
from secagg.errors import SecAggError
from secagg.messages import MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse

PARAMS = RoundParams(round=1, round_seed=2, n=5, length=6, threshold=3)


def test_round_over_encoded_messages_gives_exact_sum() -> None:
    # every message goes through bytes, as over HTTP
    states, adverts = {}, []
    for i in range(5):
        states[i], advert = client.advertise(PARAMS, i)
        adverts.append(encoding.decode_advert(encoding.encode_advert(advert)))
    srv = server.collect_adverts(PARAMS, adverts)
    downloaded = encoding.decode_adverts(encoding.encode_adverts(list(srv.adverts.values())))
    bundles = {}
    for i in range(5):
        states[i], bundle = client.share_keys(PARAMS, states[i], downloaded)
        bundles[i] = encoding.decode_shares(encoding.encode_shares(bundle))
    srv = server.route_shares(srv, bundles)
    inputs = []
    for i in range(4):  # device 4 drops
        inbox = encoding.decode_shares(encoding.encode_shares(srv.inbox[i]))
        states[i], item = client.masked_input(PARAMS, states[i], inbox, np.full(6, 10 * i, np.uint32))
        inputs.append(encoding.decode_input(encoding.encode_input(item), length=6))
    srv = server.collect_inputs(srv, inputs)
    request = encoding.decode_request(encoding.encode_request(server.unmask_request(srv)))
    assert request == server.unmask_request(srv)
    responses = [
        encoding.decode_response(encoding.encode_response(client.unmask(PARAMS, states[i], request))) for i in range(4)
    ]
    assert server.unmask_sum(srv, responses).tolist() == [60] * 6


def test_encode_input_size_is_four_bytes_a_coordinate() -> None:
    assert len(encoding.encode_input(MaskedInput(3, np.arange(6, dtype=np.uint32)))) == 8 + 24


def test_encode_response_roundtrip() -> None:
    response = UnmaskResponse(2, {1: 5, 3: 7}, {4: 9})
    assert encoding.decode_response(encoding.encode_response(response)) == response


@pytest.mark.parametrize(
    ("decode", "blob"),
    [
        (encoding.decode_advert, b"\x01\x00\x00\x00" + b"k" * 63),
        (encoding.decode_advert, b"\x01\x00\x00\x00" + b"k" * 65),
        (encoding.decode_adverts, b"\x02\x00\x00\x00" + b"\x00" * 68),
        (encoding.decode_shares, b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\xff\xff\x00\x00"),
        (encoding.decode_request, b"\x05\x00\x00\x00"),
        (encoding.decode_response, b""),
        (encoding.decode_response, encoding.encode_response(UnmaskResponse(0, {1: 1}, {}))[:-1]),
    ],
)
def test_decoders_truncated_or_trailing_bytes_refused(decode: object, blob: bytes) -> None:
    with pytest.raises(SecAggError) as err:
        decode(blob)  # type: ignore[operator]
    assert err.value.reason == "bad_message"


def test_decode_input_wrong_length_refused() -> None:
    blob = encoding.encode_input(MaskedInput(0, np.zeros(5, np.uint32)))
    with pytest.raises(SecAggError, match="5 coordinates"):
        encoding.decode_input(blob, length=6)
    with pytest.raises(SecAggError, match="truncated"):
        encoding.decode_input(blob[:-1], length=5)


def test_decode_response_duplicate_owner_refused() -> None:
    good = encoding.encode_response(UnmaskResponse(0, {1: 1}, {}))
    dup = good[:4] + b"\x02\x00\x00\x00" + good[8 : 8 + 70] * 2 + good[8 + 70 :]
    with pytest.raises(SecAggError, match="two shares"):
        encoding.decode_response(dup)


def test_decode_request_roundtrip_empty_sets() -> None:
    request = UnmaskRequest(frozenset({0, 2}), frozenset())
    assert encoding.decode_request(encoding.encode_request(request)) == request


def test_round_record_roundtrip_in_every_phase_and_protocol_continues() -> None:
    from secagg import phases

    deadlines = phases.PhaseDeadlines(advertise_s=5, share_s=5, input_s=5, unmask_s=5)

    def stored(r: phases.SecureRound) -> phases.SecureRound:
        blob = encoding.encode_round(r)
        back = encoding.decode_round(blob)
        assert encoding.encode_round(back) == blob and back.phase is r.phase
        return back

    r = stored(phases.open_round(PARAMS, deadlines, now=0.0))
    states = {}
    for i in range(5):
        states[i], advert = client.advertise(PARAMS, i)
        r = stored(phases.submit_advert(r, advert, now=1.0))
    assert r.state is not None
    for i in range(5):
        states[i], bundle = client.share_keys(PARAMS, states[i], r.state.adverts.values())
        r = stored(phases.submit_shares(r, i, bundle, now=2.0))
    assert r.state is not None and r.phase is phases.Phase.INPUT
    for i in range(4):
        assert r.state is not None
        states[i], item = client.masked_input(PARAMS, states[i], r.state.inbox[i], np.full(6, i, np.uint32))
        r = stored(phases.submit_input(r, item, now=3.0))
    r = stored(phases.advance(r, now=100.0))
    assert r.phase is phases.Phase.UNMASK
    for i in range(4):
        r = stored(phases.submit_unmask(r, client.unmask(PARAMS, states[i], r.request), now=101.0))
    assert r.phase is phases.Phase.DONE and r.total is not None and r.total.tolist() == [6] * 6
    abandoned = stored(phases.advance(phases.open_round(PARAMS, deadlines, now=0.0), now=10.0))
    assert abandoned.phase is phases.Phase.ABANDONED and abandoned.reason.startswith("below_threshold")


def test_round_record_truncated_or_bad_refused() -> None:
    from secagg import phases

    blob = encoding.encode_round(phases.open_round(PARAMS, phases.PhaseDeadlines(), now=0.0))
    with pytest.raises(SecAggError, match="truncated"):
        encoding.decode_round(blob[:-1])
    with pytest.raises(SecAggError, match="trailing"):
        encoding.decode_round(blob + b"\x00")
    bad_phase = blob[:32] + b"\x09" + blob[33:]  # the phase index (9th u32) out of range
    with pytest.raises(SecAggError, match="bad parameters"):
        encoding.decode_round(bad_phase)
