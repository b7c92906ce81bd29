from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pytest

from coordinator.errors import UpdateRejected
from coordinator.validation import UpdateLimits, decode_and_validate
from wire.update import encode_update

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
    for got, want in zip(v.tensors, _deltas(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (v.weight, v.clipped) == (7.0, False)
    assert v.norm == pytest.approx(float(np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in _deltas()))))


def test_decode_and_validate_quantized_update_matches_codec() -> None:
    limits = dataclasses.replace(LIMITS, codec="quant8")
    v = decode_and_validate(_blob(codec="quant8"), limits)
    for got, want in zip(v.tensors, _deltas(), strict=True):
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
        (_blob()[:-33] + bytes([_blob()[-33] ^ 1]) + _blob()[-32:], "checksum"),
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
    import hashlib

    _magic, _version, hlen = struct.unpack("<4sHI", blob[:10])
    header = json.loads(blob[10 : 10 + hlen])
    body = bytearray(blob[:-32])
    start = 10 + hlen + header["tensors"][0]["offset"]
    body[start : start + 4] = struct.pack("<f", float("nan"))
    return bytes(body) + hashlib.sha256(bytes(body)).digest()


def test_decode_and_validate_nan_update_refused() -> None:
    assert _reason(_with_nan(_blob())) == "not_finite"


def test_decode_and_validate_norm_bound_clips_or_rejects() -> None:
    big = _deltas(scale=100.0)
    norm = float(np.sqrt(sum((d.astype(np.float64) ** 2).sum() for d in big)))
    clip = dataclasses.replace(LIMITS, norm_bound=1.0, norm_policy="clip")
    v = decode_and_validate(_blob(big), clip)
    assert v.clipped and v.norm == pytest.approx(norm)
    got = float(np.sqrt(sum((t.astype(np.float64) ** 2).sum() for t in v.tensors)))
    assert got == pytest.approx(1.0, rel=1e-6)
    reject = dataclasses.replace(LIMITS, norm_bound=1.0, norm_policy="reject")
    assert _reason(_blob(big), reject) == "norm_too_large"


def test_update_limits_bad_values_raise() -> None:
    with pytest.raises(ValueError, match="norm_policy"):
        dataclasses.replace(LIMITS, norm_policy="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_weight"):
        dataclasses.replace(LIMITS, max_weight=0)
