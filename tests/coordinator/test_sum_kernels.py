"""coordinator.sum_kernels: each compiled loop against its numpy twin, exactly."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coordinator.sum_kernels import add_scaled, add_scaled_pair, finite_sum_of_squares, level_moments

_KERNEL_IN_A_FRESH_PROCESS = (
    "import numpy as np\n"
    "from coordinator import sum_kernels as k\n"
    "print(k.CACHED)\n"
    "print(k.level_moments(np.array([1, 2], dtype=np.uint8)))\n"
    "print(k.level_moments.stats.cache_path)\n"
)


def _fresh(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    return subprocess.run([sys.executable, "-c", _KERNEL_IN_A_FRESH_PROCESS], env=base | env, capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip


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


def test_sum_kernels_cache_goes_to_numba_cache_dir_when_set(tmp_path: Path) -> None:
    cached, moments, path = _fresh({"NUMBA_CACHE_DIR": str(tmp_path)}).stdout.splitlines()
    assert (cached, moments, Path(path).parent) == ("True", "(3, 5)", tmp_path)
    assert sorted(p.suffix for p in tmp_path.rglob("sum_kernels.level_moments-*")) == [".nbc", ".nbi"]


def test_sum_kernels_compile_uncached_where_numba_has_no_cache_directory() -> None:
    """numba's cache=True raises at import where no directory is writable; the kernels then compile uncached."""
    # a locator list that never fits a plain source file stands in for a read-only install without a home
    done = _fresh({"NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"})
    assert done.stdout.splitlines() == ["False", "(3, 5)", "None"]
    assert "set NUMBA_CACHE_DIR" in done.stderr
