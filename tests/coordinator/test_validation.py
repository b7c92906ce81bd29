from __future__ import annotations

import dataclasses
import json
import math
import struct

import numpy as np
import pytest

from coordinator.errors import UpdateRejected
from coordinator.validation import UpdateLimits, decode_and_validate
from wire.codec import dequantize
from wire.update import CHECKSUM_BYTES, checksum, encode_update

SHAPES = ((3, 4), (5,))
LIMITS = UpdateLimits(round=2, base_version=1, codec="float32", shapes=SHAPES, max_weight=100, max_bytes=10_000)


def _deltas(scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(scale * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def _blob(deltas: list[np.ndarray] | None = None, **kw: object) -> bytes:
    args: dict[str, object] = {
        "codec": "float32",
        "round": 2,
        "base_version": 1,
        "weight": 7.0,
        "seed": 3,
        "rotation_seed": 8,
    }
    args.update(kw)
    return encode_update(_deltas() if deltas is None else deltas, **args)  # type: ignore[arg-type]


def _reason(blob: bytes, limits: UpdateLimits = LIMITS) -> str:
    with pytest.raises(UpdateRejected) as err:
        decode_and_validate(blob, limits)
    return err.value.reason


def test_decode_and_validate_accepts_a_good_update_exactly() -> None:
    v = decode_and_validate(_blob(), LIMITS)
    for got, want in zip(v.tensors(), _deltas(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (v.weight, v.clipped) == (7.0, False)
    assert v.norm == pytest.approx(float(np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in _deltas()))))


def test_decode_and_validate_quantized_update_matches_codec() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8")
    v = decode_and_validate(_blob(codec="quant8"), limits)
    for got, want in zip(v.tensors(), _deltas(), strict=True):
        np.testing.assert_allclose(got, want, atol=0.1)
    assert _reason(_blob(codec="quant4"), limits) == "codec"


def test_decode_and_validate_other_rounds_rotation_refused() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8", rotation_seed=8)
    decode_and_validate(_blob(codec="quant8"), limits)  # the round's rotation: accepted
    assert _reason(_blob(codec="quant8", rotation_seed=9), limits) == "codec"


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "truncated"),
        (b"garbage" * 20, "bad_magic"),
        (_blob()[:-40], "truncated"),
        (_blob()[:-9] + bytes([_blob()[-9] ^ 1]) + _blob()[-8:], "checksum"),
        (_blob()[:10], "truncated"),
        (_blob(round=3), "wrong_round"),
        (_blob(base_version=0), "stale_base_version"),
        (_blob(weight=0.0), "bad_weight"),
        (_blob(weight=101.0), "bad_weight"),
        (_blob([np.zeros((3, 4), np.float32)]), "tensor_count"),
        (_blob([np.zeros((4, 3), np.float32), np.zeros(5, np.float32)]), "shape"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_decode_and_validate_bad_update_refused_with_reason(blob: bytes, reason: str) -> None:
    assert _reason(blob) == reason


def test_decode_and_validate_oversized_refused_before_decoding() -> None:
    assert _reason(b"\0" * 10_001) == "too_large"


def _with_nan(blob: bytes) -> bytes:
    """Overwrite the first float32 of the payload with NaN and re-checksum (a well-formed NaN update)."""
    _magic, _version, hlen = struct.unpack("<4sHI", blob[:10])
    header = json.loads(blob[10 : 10 + hlen])
    body = bytearray(blob[:-CHECKSUM_BYTES])
    start = 10 + hlen + header["tensors"][0]["offset"]
    body[start : start + 4] = struct.pack("<f", float("nan"))
    return bytes(body) + checksum(bytes(body))


def test_decode_and_validate_nan_update_refused() -> None:
    assert _reason(_with_nan(_blob())) == "not_finite"


def test_decode_and_validate_norm_bound_clips_or_rejects() -> None:
    big = _deltas(scale=100.0)
    norm = float(np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in big)))
    clip = dataclasses.replace(LIMITS, norm_bound=1.0, norm_policy="clip")
    v = decode_and_validate(_blob(big), clip)
    assert v.clipped and v.norm == pytest.approx(norm)
    got = float(np.sqrt(sum((t.astype(np.float64) ** 2).sum() for t in v.tensors())))
    assert got == pytest.approx(1.0, rel=1e-6)
    reject = dataclasses.replace(LIMITS, norm_bound=1.0, norm_policy="reject")
    assert _reason(_blob(big), reject) == "norm_too_large"


def test_update_limits_bad_values_raise() -> None:
    with pytest.raises(ValueError, match="norm_policy"):
        dataclasses.replace(LIMITS, norm_policy="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_weight"):
        dataclasses.replace(LIMITS, max_weight=0)


def _rebuilt(blob: bytes, **tensor0: object) -> bytes:
    """The blob with fields of tensor 0's header entry replaced, re-checksummed (well-formed, hostile)."""
    _magic, version, hlen = struct.unpack("<4sHI", blob[:10])
    header = json.loads(blob[10 : 10 + hlen])
    header["tensors"][0].update(tensor0)
    raw = json.dumps(header).encode()
    body = struct.pack("<4sHI", b"FKUP", version, len(raw)) + raw + blob[10 + hlen : -CHECKSUM_BYTES]
    return body + checksum(body)


POW2 = ((4, 4), (8,))  # 16 and 8 coordinates: rotated without padding


def test_validate_rotated_norm_equals_decoded_norm_without_padding() -> None:
    """The rotation is orthonormal: the norm checked on the rotated vector is the decoded update's norm."""
    limits = dataclasses.replace(LIMITS, codec="quant8", shapes=POW2, rotation_seed=8)
    deltas = [np.random.default_rng(1).normal(size=s).astype(np.float32) for s in POW2]
    v = decode_and_validate(_blob(deltas, codec="quant8"), limits)
    decoded = math.sqrt(sum(float((t.astype(np.float64) ** 2).sum()) for t in v.message.decode_tensors()))
    assert v.norm == pytest.approx(decoded, rel=1e-6)


def test_validate_rotated_norm_bounds_decoded_norm_with_padding() -> None:
    """With padding, decoding drops the padding coordinates' quantization noise: never a larger norm."""
    limits = dataclasses.replace(LIMITS, codec="quant2", rotation_seed=8)  # 12 and 5 coordinates pad to 16 and 8
    v = decode_and_validate(_blob(codec="quant2"), limits)
    decoded = math.sqrt(sum(float((t.astype(np.float64) ** 2).sum()) for t in v.message.decode_tensors()))
    assert v.norm >= decoded - 1e-9


def test_validate_quantized_norm_from_level_moments_exactly() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8", shapes=POW2, rotation_seed=8)
    v = decode_and_validate(_blob([np.ones(s, np.float32) for s in POW2], codec="quant8"), limits)
    dequantized = [
        dequantize(v.message.levels(i), 8, t.lo, t.hi) for i, t in enumerate(v.message.tensors)
    ]  # the rotated vectors, materialized the slow way
    assert v.norm == pytest.approx(math.sqrt(sum(float(d @ d) for d in dequantized)), rel=1e-12)


def test_validate_quantized_range_beyond_float32_is_not_finite() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8", rotation_seed=8)
    blob = _blob(codec="quant8")
    assert _reason(_rebuilt(blob, lo=-1e39), limits) == "not_finite"
    assert _reason(_rebuilt(blob, lo=-1.7e308, hi=1.7e308), limits) == "not_finite"


def test_validate_quantized_clip_scales_the_rotated_update() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8", rotation_seed=8, norm_bound=0.5)
    v = decode_and_validate(_blob(codec="quant8"), limits)
    assert v.clipped and v.scale * v.norm == pytest.approx(0.5)
    assert _reason(_blob(codec="quant8"), dataclasses.replace(limits, norm_policy="reject")) == "norm_too_large"
