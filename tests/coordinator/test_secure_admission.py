"""coordinator.secure_admission: each phase's body bound holds the real messages, and not much more."""

from __future__ import annotations

import pytest

from coordinator.errors import SessionError
from coordinator.secure_admission import phase_body_bound
from secagg import client as sa_client
from secagg import encoding
from secagg.messages import RoundParams

PARAMS = RoundParams(round=0, round_seed=3, n=4, length=10, threshold=3)  # complete graph: k = 3


def test_phase_body_bound_exact_numbers() -> None:
    assert PARAMS.k == 3
    assert phase_body_bound(PARAMS, "advertise_keys") == 4 + 96  # + the 32-byte self-seed commitment
    assert phase_body_bound(PARAMS, "share_keys") == 4 + 3 * (12 + 1024)
    assert phase_body_bound(PARAMS, "masked_input") == 8 + 40
    assert phase_body_bound(PARAMS, "unmask") == 4 + 2 * (4 + 3 * (4 + 66))
    with pytest.raises(SessionError, match="unknown phase"):
        phase_body_bound(PARAMS, "nonsense")


def test_phase_body_bound_holds_real_messages() -> None:
    states, adverts = zip(*(sa_client.advertise(PARAMS, i) for i in range(4)), strict=True)
    assert len(encoding.encode_advert(adverts[0])) <= phase_body_bound(PARAMS, "advertise_keys")
    _, shares = sa_client.share_keys(PARAMS, states[0], list(adverts))
    assert len(encoding.encode_shares(shares)) <= phase_body_bound(PARAMS, "share_keys")
