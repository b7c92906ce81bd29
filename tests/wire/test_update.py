"""wire.update: the update and checkpoint container, round trips, and every bad blob -> WireError(reason)."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.codec import CODECS
from wire.update import (
    CHECKSUM_BYTES,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    UPDATE_MAGIC,
    WireError,
    checksum,
    decode_update,
    decode_weights,
    encode_update,
    encode_weights,
    raw_nbytes,
)

DELTAS = [
    np.array([[0.5, -0.25, 0.0], [1.0, 2.0, -3.0]], dtype=np.float32),
    np.array([0.125], dtype=np.float32),
    np.zeros((0, 4), dtype=np.float32),
]


def _encode(codec: str = "quant4", **kw: object) -> bytes:
    args: dict[str, object] = {
        "codec": codec,
        "round": 3,
        "base_version": 2,
        "weight": 17.0,
        "seed": 42,
        "rotation_seed": 9,
    }
    args.update(kw)
    return encode_update(DELTAS, **args)  # type: ignore[arg-type]


def _split(blob: bytes) -> tuple[dict, bytes]:
    _, _, header_len = struct.unpack_from("<4sHI", blob)
    header = json.loads(blob[10 : 10 + header_len])
    return header, blob[10 + header_len : -CHECKSUM_BYTES]


def _rebuild(header: dict, payload: bytes, *, magic: bytes = UPDATE_MAGIC, version: int = FORMAT_VERSION) -> bytes:
    """A blob with a valid checksum around whatever header we like (to test header checks past the checksum)."""
    raw = json.dumps(header).encode()
    body = struct.pack("<4sHI", magic, version, len(raw)) + raw + payload
    return body + checksum(body)


def _reason(blob: bytes, **kw: object) -> str:
    with pytest.raises(WireError) as info:
        decode_update(blob, **kw)  # type: ignore[arg-type]
    return info.value.reason


def test_encode_update_float32_round_trip_exact() -> None:
    blob = _encode("float32")
    message = decode_update(blob)
    assert (message.round, message.base_version, message.weight, message.codec, message.seed) == (
        3,
        2,
        17.0,
        "float32",
        42,
    )
    assert message.shapes == ((2, 3), (1,), (0, 4))
    assert message.nbytes == len(blob)
    for got, want in zip(message.decode_tensors(), DELTAS, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_encode_update_layout_prefix_and_trailer() -> None:
    blob = _encode("quant2")
    magic, version, header_len = struct.unpack_from("<4sHI", blob)
    assert (magic, version) == (b"FKUP", 3)
    assert blob[-8:] == checksum(blob[:-8])
    header, payload = _split(blob)
    # 6 coordinates pad to 8 -> 2 bytes of 2-bit levels; 1 -> 1 -> 1 byte; 0 -> 1 -> 1 byte
    assert [(t["padded"], t["offset"], t["length"], t["bits"]) for t in header["tensors"]] == [
        (8, 0, 2, 2),
        (1, 2, 1, 2),
        (1, 3, 1, 2),
    ]
    assert len(payload) == 4
    assert len(blob) == 10 + header_len + 4 + 8


@pytest.mark.parametrize("codec", CODECS)
def test_encode_update_sizes_shrink_with_bits(codec: str) -> None:
    big = [np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32)]
    blob = encode_update(big, codec=codec, round=0, base_version=0, weight=1.0, seed=0, rotation_seed=0)
    # 2100 coordinates rotate as blocks of 2048 + 52 (padded to 64): 2112 coordinates
    payload = {"float32": 4 * 2100, "quant8": 2112, "quant4": 1056, "quant2": 528}[codec]
    assert payload < len(blob) < payload + 400
    assert raw_nbytes([(300, 7)]) == 8400


@pytest.mark.parametrize("codec", ["quant8", "quant4", "quant2"])
def test_encode_update_quantized_decodes_within_one_step(codec: str) -> None:
    message = decode_update(_encode(codec))
    bits = {"quant8": 8, "quant4": 4, "quant2": 2}[codec]
    for got, want, t in zip(message.decode_tensors(), DELTAS, message.tensors, strict=True):
        assert got.shape == want.shape
        step = (t.hi - t.lo) / ((1 << bits) - 1)
        # each rotated coordinate is off by less than one step; the orthonormal inverse keeps the L2 error
        assert np.linalg.norm(got - want) <= step * math.sqrt(t.padded) + 1e-6


def test_encode_update_deterministic_for_a_seed() -> None:
    assert _encode("quant2") == _encode("quant2")
    assert _encode("quant2") != _encode("quant2", seed=43)
    assert _encode("quant2") != _encode("quant2", rotation_seed=10)


def test_encode_update_header_carries_both_seeds() -> None:
    message = decode_update(_encode("quant8"))
    assert (message.seed, message.rotation_seed) == (42, 9)
    assert decode_update(_encode("float32")).rotation_seed is None  # float32 is not rotated


def test_encode_update_quantized_without_rotation_seed_refused() -> None:
    with pytest.raises(ValueError, match="rotation_seed"):
        _encode("quant8", rotation_seed=None)


def test_decode_update_quantized_without_rotation_seed_is_malformed() -> None:
    header, payload = _split(_encode("quant8"))
    header["rotation_seed"] = None
    assert _reason(_rebuild(header, payload)) == "malformed"


def test_encode_update_same_rotation_for_every_session_of_a_round() -> None:
    """Two sessions of one round (same rotation seed, different rounding seeds): the server can add the
    dequantized rotated vectors and unrotate the sum once, and gets the sum of the two decoded updates."""
    from wire.codec import dequantize, unrotate_tensor

    a, b = decode_update(_encode("quant8", seed=1)), decode_update(_encode("quant8", seed=2))
    t = a.tensors[0]
    rotated_sum = dequantize(a.levels(0), 8, t.lo, t.hi) + dequantize(b.levels(0), 8, b.tensors[0].lo, b.tensors[0].hi)
    want = a.decode_tensors()[0].astype(np.float64) + b.decode_tensors()[0]
    np.testing.assert_allclose(unrotate_tensor(rotated_sum, 9, 0, 6).reshape(2, 3), want, rtol=0, atol=1e-6)


def test_encode_update_clips_to_the_bound() -> None:
    message = decode_update(_encode("float32", clip_norm=1.0))
    assert message.clip_norm == 1.0
    norm = math.sqrt(sum(float(np.sum(t.astype(np.float64) ** 2)) for t in message.decode_tensors()))
    assert norm == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"codec": "quant3"}, "quant3"),
        ({"weight": -1.0}, "weight"),
        ({"weight": math.nan}, "weight"),
        ({"round": -1}, "non-negative"),
        ({"clip_norm": 0.0}, "clip bound"),
    ],
)
def test_encode_update_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _encode(**kw)


def test_encode_update_rejects_non_finite_delta() -> None:
    with pytest.raises(ValueError, match="tensor 1"):
        encode_update(
            [np.ones(2), np.array([np.inf])],
            codec="quant8",
            round=0,
            base_version=0,
            weight=1.0,
            seed=0,
            rotation_seed=0,
        )


def test_encode_update_is_unbiased_over_seeds() -> None:
    """The server's mean of many devices' quant2 updates of the same delta converges to the delta.

    One round: every device rotates with the same rotation seed and rounds with its own seed, so the
    rounding alone must make the codec unbiased (conditional on the rotation).

    Bound from the variance: each decoded coordinate has variance <= step^2/4
    (see tests/wire/test_codec.py), so the mean of K has sd <= sqrt(sum step_k^2 / 4) / K.
    """
    delta = [np.array([0.9, -0.3, 0.05], dtype=np.float32), np.array([[1.7, -1.1]], dtype=np.float32)]
    copies = 1500
    sums = [np.zeros(3), np.zeros((1, 2))]
    step_sq = [0.0, 0.0]
    for k in range(copies):
        blob = encode_update(delta, codec="quant2", round=0, base_version=0, weight=1.0, seed=k, rotation_seed=5)
        message = decode_update(blob)
        for i, (got, t) in enumerate(zip(message.decode_tensors(), message.tensors, strict=True)):
            sums[i] += got
            step_sq[i] += ((t.hi - t.lo) / 3) ** 2
    for i in range(2):
        sd_of_mean = math.sqrt(step_sq[i] / 4) / copies
        assert np.max(np.abs(sums[i] / copies - delta[i])) < 5 * sd_of_mean


def test_encode_weights_round_trip_exact() -> None:
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3) / 7, np.array(3.5, dtype=np.float32)]
    blob = encode_weights(weights)
    assert blob[:4] == b"FKWT"
    decoded = decode_weights(blob)
    assert [w.shape for w in decoded] == [(2, 3), ()]
    for got, want in zip(decoded, weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_decode_weights_refuses_an_update_and_vice_versa() -> None:
    with pytest.raises(WireError) as info:
        decode_weights(_encode())
    assert info.value.reason == "bad_magic"
    assert _reason(encode_weights([np.ones(2)])) == "bad_magic"


# -- bad input to decode_update --------------------------------------------------------------------------------


def test_decode_update_garbage_is_bad_magic() -> None:
    assert _reason(b"hello world, this is not an update at all" * 3) == "bad_magic"


def test_decode_update_empty_and_short_are_truncated() -> None:
    assert _reason(b"") == "truncated"
    assert _reason(b"FKU") == "truncated"
    assert _reason(_encode()[:9]) == "truncated"


@pytest.mark.parametrize("cut", [12, 40, -40, -9, -1])
def test_decode_update_truncated_anywhere(cut: int) -> None:
    blob = _encode("float32")
    assert _reason(blob[:cut]) == "truncated"


def test_decode_update_unsupported_version() -> None:
    for version in (1, 2, 4):  # 1: before the rotation seed was per round; 2: the sha256 trailer
        blob = bytearray(_encode())
        struct.pack_into("<H", blob, 4, version)
        assert _reason(bytes(blob)) == "unsupported_version"


def _format2(blob: bytes) -> bytes:
    """The same message as format 2 wrote it: version 2 in the prefix and a 32-byte sha256 trailer."""
    body = bytearray(blob[:-CHECKSUM_BYTES])
    struct.pack_into("<H", body, 4, 2)
    return bytes(body) + hashlib.sha256(body).digest()


@pytest.mark.parametrize("codec", ["float32", "quant8"])
def test_decode_update_format2_body_refused_in_one_line(codec: str) -> None:
    with pytest.raises(WireError) as info:
        decode_update(_format2(_encode(codec)))
    assert info.value.reason == "unsupported_version"
    assert str(info.value) == (
        "unsupported_version: container format 2, this build reads only format 3 "
        "(format 2 ended in a sha256; encode it again with this build)"
    )


def test_decode_weights_format2_checkpoint_refused() -> None:
    with pytest.raises(WireError) as info:
        decode_weights(_format2(encode_weights(DELTAS)))
    assert info.value.reason == "unsupported_version"


def test_checksum_is_xxh3_64_of_the_body() -> None:
    # XXH3-64 (seed 0) reference values, big-endian (xxHash's canonical form); b"" is xxHash's published one
    assert checksum(b"").hex() == "2d06800538d394c2"
    assert len(checksum(b"fedkeys")) == CHECKSUM_BYTES == 8
    assert checksum(memoryview(b"fedkeys")) == checksum(b"fedkeys")
    blob = _encode("quant8")
    assert blob[-CHECKSUM_BYTES:] == checksum(blob[:-CHECKSUM_BYTES])


def test_decode_update_checksum_mismatch() -> None:
    blob = bytearray(_encode("float32"))
    blob[-40] ^= 0x01  # a payload byte
    assert _reason(bytes(blob)) == "checksum"
    blob = bytearray(_encode("float32"))
    blob[-1] ^= 0x80  # the checksum itself
    assert _reason(bytes(blob)) == "checksum"
    blob = bytearray(_encode("quant8"))
    blob[12] ^= 0x20  # a header byte: the key "base_version" becomes "Base_version", still valid JSON
    assert _reason(bytes(blob)) == "checksum"


@pytest.mark.parametrize("position", [0, 1, 2, 3, 4, 5, 6, 7])
def test_decode_weights_damaged_trailer_refused(position: int) -> None:
    blob = bytearray(encode_weights(DELTAS))
    blob[len(blob) - CHECKSUM_BYTES + position] ^= 0x01
    with pytest.raises(WireError) as info:
        decode_weights(bytes(blob))
    assert info.value.reason == "checksum"


def test_decode_update_oversized() -> None:
    blob = _encode()
    assert _reason(blob, max_bytes=len(blob) - 1) == "too_large"
    assert decode_update(blob, max_bytes=len(blob)).nbytes == len(blob)


def test_decode_update_oversized_header() -> None:
    header, payload = _split(_encode())
    header["padding"] = "x" * (MAX_HEADER_BYTES + 1)
    assert _reason(_rebuild(header, payload)) == "too_large"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h["tensors"][0].update(length=h["tensors"][0]["length"] + 1),  # header lies about sizes
        lambda h: h["tensors"][0].update(length=1),
        lambda h: h["tensors"][0].update(shape=[3, 4]),
        lambda h: h["tensors"][0].update(shape=[-1, 6]),
        lambda h: h["tensors"][0].update(shape="big"),
        lambda h: h["tensors"][0].update(padded=16),
        lambda h: h["tensors"][1].update(offset=0),
        lambda h: h["tensors"][0].update(lo=5.0, hi=1.0),
        lambda h: h["tensors"][0].update(bits=9),
        lambda h: h["tensors"][0].update(bits=8),  # disagrees with the codec
        lambda h: h["tensors"][0].update(dtype="float64"),
        lambda h: h["tensors"].append({"shape": [1], "dtype": "float32", "bits": 4, "lo": 0, "hi": 0}),
        lambda h: h.update(tensors={"a": 1}),
        lambda h: h.update(codec="quant3"),
        lambda h: h.update(round=-1),
        lambda h: h.update(round=True),
        lambda h: h.update(weight="heavy"),
        lambda h: h.update(seed=2**70),
        lambda h: h.update(clip_norm=-1.0),
        lambda h: h.pop("base_version"),
    ],
)
def test_decode_update_header_inconsistent_is_malformed(mutate: object) -> None:
    header, payload = _split(_encode())
    mutate(header)  # type: ignore[operator]
    assert _reason(_rebuild(header, payload)) in ("malformed", "truncated")


def test_decode_update_header_claims_more_payload_is_truncated() -> None:
    header, payload = _split(_encode())
    header["tensors"][0]["length"] = 10**9
    assert _reason(_rebuild(header, payload)) == "truncated"


def test_decode_update_trailing_bytes_are_malformed() -> None:
    header, payload = _split(_encode())
    assert _reason(_rebuild(header, payload + b"\x00")) == "malformed"


@pytest.mark.parametrize("raw", [b"[1, 2]", b"{not json", b'{"weight": NaN}', b"\xff\xfe"])
def test_decode_update_header_not_an_object_is_malformed(raw: bytes) -> None:
    body = struct.pack("<4sHI", UPDATE_MAGIC, FORMAT_VERSION, len(raw)) + raw
    assert _reason(body + checksum(body)) == "malformed"


def test_decode_update_not_bytes_is_malformed() -> None:
    assert _reason("FKUP" * 20) == "malformed"  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=st.binary(max_size=300))
def test_decode_update_random_garbage_only_wire_error(blob: bytes) -> None:
    with pytest.raises(WireError):
        decode_update(blob)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decode_update_random_corruption_only_wire_error(data: st.DataObject) -> None:
    blob = bytearray(_encode(data.draw(st.sampled_from(CODECS))))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        message = decode_update(bytes(blob[:cut]))
    except WireError as e:
        assert e.reason in ("truncated", "bad_magic", "unsupported_version", "checksum", "malformed", "too_large")
    else:  # only an unchanged blob can pass the checksum
        assert message.decode_tensors()[1].shape == (1,)


@settings(max_examples=150, deadline=None)
@given(
    header=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    ),
    payload=st.binary(max_size=40),
)
def test_decode_update_random_headers_with_valid_checksum_only_wire_error(header: object, payload: bytes) -> None:
    raw = json.dumps(header).encode()
    body = struct.pack("<4sHI", UPDATE_MAGIC, FORMAT_VERSION, len(raw)) + raw + payload
    with pytest.raises(WireError):
        decode_update(body + checksum(body))
