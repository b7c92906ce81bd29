"""coordinator.sum_kernels: each compiled loop against its numpy twin, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.sum_kernels import add_scaled, add_scaled_pair, finite_sum_of_squares, level_moments


def test_level_moments_exact_numbers() -> None:
    assert level_moments(np.array([0, 3, 255], dtype=np.uint8)) == (258, 9 + 255 * 255)
    assert level_moments(np.zeros(0, dtype=np.uint8)) == (0, 0)


def test_level_moments_match_numpy_on_a_large_vector() -> None:
    levels = np.random.default_rng(0).integers(0, 256, size=100_003).astype(np.uint8)
    wide = levels.astype(np.int64)
    assert level_moments(levels) == (int(wide.sum()), int((wide * wide).sum()))


def test_finite_sum_of_squares_exact_and_flags_non_finite() -> None:
    assert finite_sum_of_squares(np.array([3.0, 4.0], dtype=np.float32)) == (25.0, True)
    for bad in (math.inf, -math.inf, math.nan):
        assert finite_sum_of_squares(np.array([1.0, bad], dtype=np.float32))[1] is False


def test_finite_sum_of_squares_accumulates_in_float64() -> None:
    values = np.full(10_000_000 // 100, 1e-3, dtype=np.float32)
    got, _ = finite_sum_of_squares(values)
    assert got == pytest.approx(float(values.astype(np.float64) @ values.astype(np.float64)), rel=1e-12)


@pytest.mark.parametrize("acc_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_dtype", [np.uint8, np.float32])
def test_add_scaled_matches_numpy(acc_dtype: type, x_dtype: type) -> None:
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, size=1000) if x_dtype is np.uint8 else rng.normal(size=1000)).astype(x_dtype)
    acc = rng.normal(size=1000).astype(acc_dtype)
    want = acc + acc_dtype(0.37) * x.astype(acc_dtype)
    add_scaled(acc, x, 0.37)
    np.testing.assert_allclose(acc, want, rtol=1e-6 if acc_dtype is np.float32 else 1e-15)
    assert acc.dtype == acc_dtype


def test_add_scaled_adds_in_place_into_a_view() -> None:
    acc = np.zeros(5)
    add_scaled(acc[1:3], np.array([2, 4], dtype=np.uint8), 0.5)
    assert acc.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]


@pytest.mark.parametrize("acc_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_dtype", [np.uint8, np.float32])
def test_add_scaled_pair_matches_numpy_exactly(acc_dtype: type, x_dtype: type) -> None:
    rng = np.random.default_rng(2)
    x, y = ((rng.integers(0, 256, size=1000) if x_dtype is np.uint8 else rng.normal(size=1000)).astype(x_dtype)
            for _ in range(2))  # fmt: skip
    acc = rng.normal(size=1000).astype(acc_dtype)
    both = 0.37 * x.astype(np.float64) + 1.25 * y.astype(np.float64)  # formed in float64, then added
    want = (acc.astype(np.float64) + both).astype(acc_dtype) if acc_dtype is np.float32 else acc + both
    add_scaled_pair(acc, x, 0.37, y, 1.25)
    np.testing.assert_array_equal(acc, want)
    assert acc.dtype == acc_dtype
