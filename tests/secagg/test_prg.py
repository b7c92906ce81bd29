from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import SecAggError
from secagg.prg import expand


def test_expand_deterministic_and_seed_dependent() -> None:
    a = expand(b"a" * 32, 1000)
    assert a.dtype == np.uint32 and a.shape == (1000,)
    assert np.array_equal(a, expand(b"a" * 32, 1000))
    assert not np.array_equal(a, expand(b"b" * 32, 1000))
    assert np.array_equal(expand(b"a" * 32, 10), a[:10])  # a prefix of the same stream


def test_expand_output_uniform_bytes() -> None:
    counts = np.bincount(expand(bytes(range(32)), 1 << 14).view(np.uint8), minlength=256)
    expected = counts.sum() / 256
    assert np.sum((counts - expected) ** 2) / expected < 330.52  # chi-square(255) upper 1e-3 quantile


def test_expand_bad_arguments_refused() -> None:
    with pytest.raises(SecAggError, match="32 bytes"):
        expand(b"short", 4)
    with pytest.raises(SecAggError, match="non-negative"):
        expand(b"a" * 32, -1)
    assert expand(b"a" * 32, 0).shape == (0,)
