from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import SecAggError
from secagg.ring import RingSpec, decode_sum, encode


def test_encode_levels_on_the_grid() -> None:
    spec = RingSpec(bits=2, clip=1.5)  # levels -1.5, -0.5, 0.5, 1.5
    levels = encode(np.array([-1.5, -0.5, 0.5, 1.5]), spec, np.random.default_rng(0))
    assert levels.dtype == np.uint32
    assert levels.tolist() == [0, 1, 2, 3]


def test_decode_sum_exact_for_sum_of_levels() -> None:
    spec = RingSpec(bits=4, clip=2.0)
    rng = np.random.default_rng(1)
    xs = [rng.uniform(-2, 2, 64) for _ in range(5)]
    levels = [encode(x, spec, rng) for x in xs]
    each = [-2.0 + lv.astype(np.float64) * (4.0 / 15) for lv in levels]
    total = np.sum(levels, axis=0, dtype=np.uint64).astype(np.uint32)
    np.testing.assert_allclose(decode_sum(total, 5, spec), np.sum(each, axis=0), atol=1e-9)


def test_encode_unbiased() -> None:
    spec = RingSpec(bits=1, clip=1.0)
    x = np.full(20000, 0.5)  # between levels -1 and 1: up with probability 3/4
    levels = encode(x, spec, np.random.default_rng(2))
    assert abs(float(decode_sum(levels, 1, spec).mean()) - 0.5) < 0.03


@pytest.mark.parametrize("value", [1.01, -2.0, np.nan, np.inf])
def test_encode_values_off_the_grid_refused(value: float) -> None:
    with pytest.raises(SecAggError) as err:
        encode(np.array([0.0, value]), RingSpec(clip=1.0), np.random.default_rng(0))
    assert err.value.reason == "bad_message"


def test_ring_overflow_refused() -> None:
    spec = RingSpec(bits=16)
    assert spec.max_devices() == 65537
    spec.check_devices(65537)
    with pytest.raises(SecAggError, match="overflow"):
        decode_sum(np.zeros(2, np.uint32), 65538, spec)


@pytest.mark.parametrize(("bits", "clip"), [(0, 1.0), (25, 1.0), (8, 0.0), (8, float("inf"))])
def test_ring_spec_bad_values_refused(bits: int, clip: float) -> None:
    with pytest.raises(ValueError, match="RingSpec"):
        RingSpec(bits=bits, clip=clip)
