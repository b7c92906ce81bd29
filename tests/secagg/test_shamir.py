from __future__ import annotations

import itertools

import pytest

from secagg import shamir
from secagg.errors import SecAggError

SECRET = bytes(range(1, 33))


def test_reconstruct_from_any_threshold_subset() -> None:
    shares = shamir.split(SECRET, range(1, 7), 3)
    assert set(shares) == set(range(1, 7))
    for subset in itertools.combinations(shares, 3):
        assert shamir.reconstruct({x: shares[x] for x in subset}, 3) == SECRET


def test_reconstruct_more_than_threshold_ok() -> None:
    shares = shamir.split(SECRET, [2, 5, 9, 11], 2)
    assert shamir.reconstruct(shares, 2) == SECRET


def test_reconstruct_too_few_shares_refused() -> None:
    shares = shamir.split(SECRET, range(1, 7), 4)
    with pytest.raises(SecAggError) as err:
        shamir.reconstruct({x: shares[x] for x in (1, 2, 3)}, 4)
    assert err.value.reason == "unrecoverable"


def test_reconstruct_below_threshold_shares_say_nothing() -> None:
    # Interpolating t - 1 shares of a degree t - 1 polynomial as if t - 1 were the
    # threshold gives an unrelated value (out of range or not the secret).
    shares = shamir.split(SECRET, range(1, 7), 4)
    try:
        guess = shamir.reconstruct({x: shares[x] for x in (1, 2, 3)}, 3)
    except SecAggError:
        return
    assert guess != SECRET


def test_split_fresh_randomness_each_time() -> None:
    assert shamir.split(SECRET, range(1, 4), 2) != shamir.split(SECRET, range(1, 4), 2)


def test_split_threshold_one_is_the_secret() -> None:
    shares = shamir.split(SECRET, [1, 2], 1)
    assert set(shares.values()) == {int.from_bytes(SECRET, "big")}


@pytest.mark.parametrize(
    ("points", "threshold", "match"),
    [([1, 2], 3, "threshold"), ([1, 2], 0, "threshold"), ([0, 1], 2, "points"), ([-1, 1], 1, "points")],
)
def test_split_bad_parameters_refused(points: list[int], threshold: int, match: str) -> None:
    with pytest.raises(SecAggError, match=match):
        shamir.split(SECRET, points, threshold)


def test_share_bytes_roundtrip_and_bad_bytes() -> None:
    value = shamir.split(SECRET, [1, 2], 2)[1]
    assert shamir.share_from_bytes(shamir.share_to_bytes(value)) == value
    with pytest.raises(SecAggError, match="66 bytes"):
        shamir.share_from_bytes(b"\x00" * 65)
    with pytest.raises(SecAggError, match="outside"):
        shamir.share_from_bytes(b"\xff" * 66)


@pytest.mark.parametrize("point", [1, 3, 6])  # in the interpolated subset (1, 3) or an extra share (6)
def test_reconstruct_share_off_by_one_refused(point: int) -> None:
    shares = shamir.split(SECRET, range(1, 7), 3)
    shares[point] = (shares[point] + 1) % shamir.PRIME
    with pytest.raises(SecAggError) as err:
        shamir.reconstruct(shares, 3)
    assert err.value.reason == "bad_shares"


def test_reconstruct_exactly_threshold_shares_cannot_be_checked() -> None:
    shares = shamir.split(SECRET, range(1, 4), 3)
    shares[2] += 1
    assert shamir.reconstruct(shares, 3, length=66) != SECRET.rjust(66, b"\0")  # a wrong secret, no error
