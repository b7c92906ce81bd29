"""coordinator.sealing: HPKE to an ephemeral key; opens only with that key, that context, those bytes."""

from __future__ import annotations

import pytest

from coordinator.sealing import SealError, new_private_key, open_sealed, public_bytes, seal


def test_seal_round_trip_and_fresh_ciphertext_each_time() -> None:
    key = new_private_key()
    a, b = seal(public_bytes(key), b"partial", b"round=1"), seal(public_bytes(key), b"partial", b"round=1")
    assert a != b and b"partial" not in a  # a fresh ephemeral sender key per seal
    assert open_sealed(key, a, b"round=1") == open_sealed(key, b, b"round=1") == b"partial"


def test_open_sealed_refuses_other_key_context_or_altered_bytes() -> None:
    key = new_private_key()
    sealed = seal(public_bytes(key), b"partial", b"round=1")
    with pytest.raises(SealError):
        open_sealed(new_private_key(), sealed, b"round=1")
    with pytest.raises(SealError):
        open_sealed(key, sealed, b"round=2")  # moved to another round
    with pytest.raises(SealError):
        open_sealed(key, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"round=1")


def test_seal_bad_public_key_is_named() -> None:
    with pytest.raises(SealError, match="32 bytes, got 31"):
        seal(b"\0" * 31, b"x", b"c")
