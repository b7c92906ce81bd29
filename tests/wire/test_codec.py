"""wire.codec: exact numbers on tiny vectors, round trips, and unbiasedness measured against the variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.codec import (
    CODECS,
    CodecSpec,
    clip_by_global_norm,
    dequantize,
    encode_tensor,
    fwht,
    global_l2_norm,
    hadamard_rotate,
    hadamard_unrotate,
    pack_bits,
    packed_size,
    padded_length,
    padded_size,
    rotate_tensor,
    rotation_blocks,
    round_rotation_seed,
    rounding_draws,
    stochastic_quantize,
    unpack_bits,
    unpack_levels,
    unrotate_tensor,
)


def _sylvester(m: int) -> np.ndarray:
    h = np.array([[1.0]])
    while h.shape[0] < m:
        h = np.kron(np.array([[1.0, 1.0], [1.0, -1.0]]), h)
    return h


def test_codec_spec_bits_per_codec() -> None:
    assert [CodecSpec.parse(c).bits for c in CODECS] == [None, 8, 4, 2]


def test_codec_spec_unknown_name_is_named() -> None:
    with pytest.raises(ValueError, match="quant3"):
        CodecSpec.parse("quant3")


def test_global_l2_norm_spans_all_tensors() -> None:
    assert global_l2_norm([np.array([3.0]), np.array([[4.0]])]) == 5.0
    assert global_l2_norm([]) == 0.0


def test_clip_by_global_norm_scales_all_tensors_together() -> None:
    clipped, norm = clip_by_global_norm([np.array([3.0]), np.array([4.0])], 2.5)
    assert norm == 5.0
    np.testing.assert_allclose(clipped[0], [1.5], rtol=1e-7)
    np.testing.assert_allclose(clipped[1], [2.0], rtol=1e-7)
    assert clipped[0].dtype == np.float32


def test_clip_by_global_norm_within_bound_unchanged() -> None:
    clipped, norm = clip_by_global_norm([np.array([0.6, 0.8], dtype=np.float32)], 1.0 + 1e-6)
    assert norm == pytest.approx(1.0)
    np.testing.assert_array_equal(clipped[0], np.array([0.6, 0.8], dtype=np.float32))


@pytest.mark.parametrize("bound", [0.0, -1.0, math.inf, math.nan])
def test_clip_by_global_norm_bad_bound(bound: float) -> None:
    with pytest.raises(ValueError, match="clip bound"):
        clip_by_global_norm([np.ones(2)], bound)


def test_padded_length_next_power_of_two() -> None:
    assert [padded_length(n) for n in (0, 1, 2, 3, 5, 1024, 1025)] == [1, 1, 2, 4, 8, 1024, 2048]


def test_rotation_blocks_binary_expansion_then_padded_tail() -> None:
    assert rotation_blocks(73_728) == [(65_536, 65_536), (8_192, 8_192)]
    assert rotation_blocks(2100) == [(2048, 2048), (52, 64)]
    assert rotation_blocks(5) == [(5, 8)]
    assert rotation_blocks(0) == [(0, 1)]
    assert rotation_blocks(3000, min_block=1000) == [(2048, 2048), (952, 1024)]
    assert rotation_blocks(3000, min_block=500) == [(2048, 2048), (512, 512), (440, 512)]
    assert sum(p for _, p in rotation_blocks(960_000)) == 960_000


def test_fwht_exact_numbers() -> None:
    np.testing.assert_array_equal(fwht(np.array([1.0, 2.0, 3.0, 4.0])), [5.0, -1.0, -2.0, 0.0])
    np.testing.assert_array_equal(fwht(np.array([1.0, 0.0, 0.0, 0.0])), [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(fwht(np.array([7.0])), [7.0])


def test_fwht_matches_sylvester_matrix() -> None:
    x = np.random.default_rng(0).normal(size=64)
    np.testing.assert_allclose(fwht(x), _sylvester(64) @ x / 8.0, atol=1e-12)


def test_fwht_rejects_non_power_of_two() -> None:
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(np.ones(6))


def test_hadamard_rotate_is_orthonormal() -> None:
    n = 5
    q = np.stack([hadamard_rotate(np.eye(n)[i], seed=3) for i in range(n)], axis=1)  # (8, 5)
    assert q.shape == (8, 5)
    np.testing.assert_allclose(q.T @ q, np.eye(n), atol=1e-12)
    assert set(np.round(np.abs(q.ravel()) * math.sqrt(8), 12)) == {1.0}


def test_hadamard_rotate_inverts_exactly_and_keeps_norm() -> None:
    x = np.array([0.5, -2.0, 3.25, 0.0, 1e-3, 7.0], dtype=np.float32)
    y = hadamard_rotate(x, seed=11)
    assert y.shape == (8,)
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x.astype(np.float64)), rel=1e-12)
    np.testing.assert_allclose(hadamard_unrotate(y, seed=11, n=6), x, rtol=0, atol=1e-12)


def test_hadamard_rotate_deterministic_per_seed() -> None:
    x = np.arange(8.0)
    np.testing.assert_array_equal(hadamard_rotate(x, 5), hadamard_rotate(x, 5))
    assert not np.allclose(hadamard_rotate(x, 5), hadamard_rotate(x, 6))


def test_hadamard_unrotate_wrong_length() -> None:
    with pytest.raises(ValueError, match="expected 8"):
        hadamard_unrotate(np.ones(4), seed=0, n=6)


def test_stochastic_quantize_exact_levels_on_grid() -> None:
    x = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
    levels, lo, hi = stochastic_quantize(x, 2, np.random.default_rng(0).random(x.size))
    assert (levels.tolist(), lo, hi) == ([0, 1, 2, 3], 0.0, 1.0)
    assert levels.dtype == np.uint8


def test_stochastic_quantize_rounds_to_neighbours_only() -> None:
    x = np.array([0.0, 0.1, 0.5, 0.9, 1.0])  # scaled by 3: 0, 0.3, 1.5, 2.7, 3
    for seed in range(50):
        levels, _, _ = stochastic_quantize(x, 2, np.random.default_rng(seed).random(x.size))
        assert levels[0] == 0 and levels[4] == 3
        assert levels[1] in (0, 1) and levels[2] in (1, 2) and levels[3] in (2, 3)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_stochastic_quantize_levels_within_range(bits: int) -> None:
    x = np.random.default_rng(1).normal(size=1000) * 100
    levels, lo, hi = stochastic_quantize(x, bits, np.random.default_rng(2).random(x.size))
    assert levels.min() == 0 and levels.max() == (1 << bits) - 1
    assert (lo, hi) == (x.min(), x.max())


def test_stochastic_quantize_deterministic_for_a_seed() -> None:
    x = np.random.default_rng(1).normal(size=100)
    a = stochastic_quantize(x, 4, np.random.default_rng(9).random(x.size))
    b = stochastic_quantize(x, 4, np.random.default_rng(9).random(x.size))
    np.testing.assert_array_equal(a[0], b[0])


def test_stochastic_quantize_constant_and_empty() -> None:
    levels, lo, hi = stochastic_quantize(np.full(3, 2.5), 4, np.zeros(3))
    assert (levels.tolist(), lo, hi) == ([0, 0, 0], 2.5, 2.5)
    np.testing.assert_array_equal(dequantize(levels, 4, lo, hi), [2.5, 2.5, 2.5])
    assert stochastic_quantize(np.zeros(0), 2, np.zeros(0))[0].size == 0


def test_stochastic_quantize_tiny_range_stays_finite() -> None:
    x = np.array([0.0, 5e-324, 1e-323])  # subnormal: 3 / (hi - lo) would overflow to infinity
    levels, lo, hi = stochastic_quantize(x, 2, np.random.default_rng(0).random(x.size))
    assert levels.tolist()[0] == 0 and levels.tolist()[2] == 3
    assert np.all(np.isfinite(dequantize(levels, 2, lo, hi)))


def test_stochastic_quantize_rejects_non_finite_and_bad_bits() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        stochastic_quantize(np.array([0.0, np.nan]), 2, np.zeros(2))
    with pytest.raises(ValueError, match="bits"):
        stochastic_quantize(np.ones(2), 9, np.zeros(2))


def test_dequantize_exact_numbers() -> None:
    np.testing.assert_array_equal(dequantize(np.array([0, 1, 2, 3]), 2, -1.0, 2.0), [-1.0, 0.0, 1.0, 2.0])


def test_pack_bits_exact_bytes() -> None:
    assert pack_bits(np.array([1, 2, 3, 0]), 2) == bytes([0b00_11_10_01])
    assert pack_bits(np.array([1, 15, 7]), 4) == bytes([0xF1, 0x07])
    assert pack_bits(np.array([5, 3]), 3) == bytes([5 | 3 << 3])
    assert pack_bits(np.array([200, 7]), 8) == bytes([200, 7])
    assert pack_bits(np.array([1, 0, 1]), 2) == bytes([0b01_00_01])
    assert [packed_size(n, 2) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]


def test_pack_bits_rejects_out_of_range_level() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        pack_bits(np.array([4]), 2)


def test_unpack_bits_wrong_size() -> None:
    with pytest.raises(ValueError, match="need 2 bytes"):
        unpack_bits(b"\x00", 4, 3)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 8), data=st.data())
def test_pack_unpack_round_trip(bits: int, data: st.DataObject) -> None:
    levels = np.array(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=70)), dtype=np.uint8)
    packed = pack_bits(levels, bits)
    assert len(packed) == packed_size(len(levels), bits)
    np.testing.assert_array_equal(unpack_bits(packed, bits, len(levels)), levels)


class _NeverUp:
    """A generator stand-in whose draws never round up: deterministic floor rounding, which is biased."""

    def random(self, size: int) -> np.ndarray:
        return np.ones(size)


def _encode_decode(x: np.ndarray, bits: int, seed: int, rng: object) -> tuple[np.ndarray, float]:
    """One rotated, quantized and decoded copy of x, and the step size of its quantization grid."""
    rotated = hadamard_rotate(x, seed)
    levels, lo, hi = stochastic_quantize(rotated, bits, rng.random(rotated.size))  # type: ignore[attr-defined]
    return hadamard_unrotate(dequantize(levels, bits, lo, hi), seed, x.size), (hi - lo) / ((1 << bits) - 1)


def _max_z(x: np.ndarray, bits: int, copies: int, rng_for: object) -> float:
    """The largest per-coordinate error of the mean of ``copies`` decodings, in standard deviations.

    Conditional on its rotation, a coordinate rounded with fractional position p
    has variance p(1-p) step^2 <= step^2 / 4; the unrotation mixes coordinates
    with a row of unit norm, so each decoded coordinate's variance is at most
    step^2 / 4 too. Independent copies: Var(mean) <= sum(step_k^2) / (4 K^2).
    """
    decoded, steps = zip(*(_encode_decode(x, bits, k, rng_for(k)) for k in range(copies)), strict=True)  # type: ignore[operator]
    mean = np.mean(decoded, axis=0)
    sd_of_mean = math.sqrt(sum(s * s for s in steps) / 4.0) / copies
    return float(np.max(np.abs(mean - x)) / sd_of_mean)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantization_is_unbiased_within_the_variance_bound(bits: int) -> None:
    x = np.array([0.9, -0.3, 0.05, 0.0, 1.7, -1.1])
    z = _max_z(x, bits, 3000, lambda k: np.random.default_rng([k, 1]))
    assert z < 5.0  # 5 standard deviations (bound from the quantizer's variance, not a tuned tolerance)


def test_unbiasedness_check_catches_biased_rounding() -> None:
    x = np.array([0.9, -0.3, 0.05, 0.0, 1.7, -1.1])
    assert _max_z(x, 2, 3000, lambda k: _NeverUp()) > 5.0


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 8), data=st.data())
def test_unpack_levels_matches_unpack_bits(bits: int, data: st.DataObject) -> None:
    levels = np.array(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=70)), dtype=np.uint8)
    packed = pack_bits(levels, bits)
    np.testing.assert_array_equal(unpack_levels(packed, bits, len(levels)), levels)


def test_unpack_levels_exact_nibbles_and_wrong_size() -> None:
    np.testing.assert_array_equal(unpack_levels(bytes([0x21, 0x0F]), 4, 3), [1, 2, 15])
    np.testing.assert_array_equal(unpack_levels(bytes([0b11100100]), 2, 4), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="need 2 bytes"):
        unpack_levels(b"\x00", 4, 3)


def test_round_rotation_seed_per_round_and_reproducible() -> None:
    seeds = [round_rotation_seed(7, r) for r in range(4)]
    assert seeds == [round_rotation_seed(7, r) for r in range(4)]
    assert len(set(seeds)) == 4 and all(0 <= s < 2**32 for s in seeds)
    assert round_rotation_seed(8, 0) != seeds[0]
    with pytest.raises(ValueError, match="-1"):
        round_rotation_seed(7, -1)


def test_rotate_tensor_blocks_invert_and_keep_norm() -> None:
    x = np.random.default_rng(3).normal(size=2100)
    y = rotate_tensor(x, 11, 2)
    assert y.shape == (padded_size(2100),) == (2112,)
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-12)  # orthonormal: the norm survives
    np.testing.assert_allclose(unrotate_tensor(y, 11, 2, 2100), x, rtol=0, atol=1e-12)
    assert not np.allclose(rotate_tensor(x, 11, 3), y)  # each tensor index has its own signs
    with pytest.raises(ValueError, match="2112"):
        unrotate_tensor(y[:-1], 11, 2, 2100)


def test_rounding_draws_per_seed_and_tensor() -> None:
    draw = lambda seed, i: rounding_draws(seed, i, 3).tolist()  # noqa: E731
    assert draw(1, 0) == draw(1, 0)
    assert draw(1, 0) != draw(2, 0) and draw(1, 0) != draw(1, 1)
    assert rounding_draws(1, 0, 5)[:3].tolist() == draw(1, 0)  # a prefix-stable stream
    with pytest.raises(ValueError, match="rounding seed must be non-negative, got -1"):
        rounding_draws(-1, 0, 3)


@pytest.mark.parametrize("bits", [2, 8])
def test_encode_tensor_unbiased_for_one_round_rotation(bits: int) -> None:
    """Every session of a round shares the rotation and rounds with its own seed: the mean of the decodings
    converges to x within 5 standard deviations of the quantizer's variance bound (see ``_max_z``)."""
    x = np.array([0.9, -0.3, 0.05, 0.0, 1.7, -1.1])
    copies, total, step_sq = 3000, np.zeros(8), 0.0
    for k in range(copies):
        levels, lo, hi = encode_tensor(x, bits, rotation_seed=99, rounding_seed=k, index=0)
        total += dequantize(levels, bits, lo, hi)
        step_sq += ((hi - lo) / ((1 << bits) - 1)) ** 2
    mean = unrotate_tensor(total / copies, 99, 0, x.size)  # one unrotation of the summed rotated vectors
    assert float(np.max(np.abs(mean - x))) < 5.0 * math.sqrt(step_sq / 4.0) / copies
