"""wire.counter_rng: exact words of the keyed streams, their ranges, and the statistics the codec relies on."""

from __future__ import annotations

import numpy as np
import pytest

from wire.counter_rng import derive_key, fmix32, random_bits, random_signs, uniforms


def test_fmix32_exact_words() -> None:
    # MurmurHash3's finalizer: 0 is its fixed point; the other words pin the constants and shifts.
    assert fmix32(np.array([0, 1, 0xFFFFFFFF], dtype=np.uint32)).tolist() == [0, 0x514E28B7, 0x81F16F39]


def test_derive_key_depends_on_every_word_and_both_seed_halves() -> None:
    base = derive_key(5, 1, 2)
    assert base == derive_key(5, 1, 2)
    others = {derive_key(6, 1, 2), derive_key(5 + (1 << 32), 1, 2), derive_key(5, 2, 2), derive_key(5, 1, 3)}
    assert base not in others and len(others) == 4
    assert derive_key(5, 1) != derive_key(5, 1, 0)  # the number of words counts


@pytest.mark.parametrize(("seed", "words"), [(-1, ()), (1 << 64, ()), (0, (-1,)), (0, (1 << 32,))])
def test_derive_key_rejects_out_of_range(seed: int, words: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="must be in"):
        derive_key(seed, *words)


def test_random_bits_is_a_prefix_stable_stream() -> None:
    long, short = random_bits(123, 1000), random_bits(123, 10)
    np.testing.assert_array_equal(long[:10], short)
    assert long.dtype == np.uint32 and len(np.unique(long)) == 1000  # a bijection of the counter: no repeats
    assert not np.array_equal(random_bits(124, 10), short)


def test_uniforms_cover_the_unit_interval_evenly() -> None:
    u = uniforms(derive_key(7, 1), 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=10, range=(0.0, 1.0))[0]
    # each bin holds 20,000 +- 5 standard deviations (sqrt(200000 * 0.1 * 0.9) = 134)
    assert np.all(np.abs(counts - 20_000) < 5 * 134)


def test_random_signs_are_balanced_and_plus_minus_one() -> None:
    s = random_signs(derive_key(3, 9), 100_000)
    assert set(np.unique(s).tolist()) == {-1.0, 1.0}
    assert abs(float(s.sum())) < 5 * np.sqrt(100_000)


def test_random_bits_rejects_bad_key() -> None:
    with pytest.raises(ValueError, match="32-bit key"):
        random_bits(1 << 32, 3)
