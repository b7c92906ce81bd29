from __future__ import annotations

import pytest

from secagg.errors import SecAggError
from secagg.keys import KeyPair, agree, generate_keypair, keypair_from_private


def test_agree_symmetric_between_two_devices() -> None:
    a, b = generate_keypair(), generate_keypair()
    assert agree(a.private, b.public, info=b"x") == agree(b.private, a.public, info=b"x")
    assert len(agree(a.private, b.public, info=b"x")) == 32


def test_agree_context_separates_keys() -> None:
    a, b, c = generate_keypair(), generate_keypair(), generate_keypair()
    assert agree(a.private, b.public, info=b"mask") != agree(a.private, b.public, info=b"share")
    assert agree(a.private, b.public, info=b"mask") != agree(a.private, c.public, info=b"mask")


def test_keypair_from_private_rebuilds_public_half() -> None:
    a = generate_keypair()
    assert keypair_from_private(a.private) == a


@pytest.mark.parametrize("public", [b"\x00" * 31, b"\x00" * 32])
def test_agree_bad_or_low_order_public_key_refused(public: bytes) -> None:
    with pytest.raises(SecAggError) as err:
        agree(generate_keypair().private, public, info=b"x")
    assert err.value.reason == "bad_message"


def test_keypair_wrong_sizes_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyPair(private=b"1", public=b"2" * 32)
    with pytest.raises(SecAggError):
        keypair_from_private(b"short")
