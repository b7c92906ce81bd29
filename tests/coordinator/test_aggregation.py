from __future__ import annotations

import numpy as np
import pytest

from coordinator.aggregation import WeightedSum

SHAPES = ((2, 3), (4,))


def _tensors(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def test_weighted_sum_mean_is_exact_weighted_mean() -> None:
    s = WeightedSum(SHAPES)
    s.add([np.ones((2, 3), np.float32), np.zeros(4, np.float32)], 1.0)
    s.add([np.full((2, 3), 4, np.float32), np.full(4, 2, np.float32)], 3.0)
    mean = s.mean()
    np.testing.assert_array_equal(mean[0], np.full((2, 3), 13 / 4))
    np.testing.assert_array_equal(mean[1], np.full(4, 6 / 4))
    assert (s.weight, s.count) == (4.0, 2)


def test_weighted_sum_roundtrips_bytes_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(0)
    updates = [(_tensors(rng), float(w)) for w in rng.integers(1, 100, size=20)]
    a = WeightedSum(SHAPES)
    for t, w in updates:
        a = WeightedSum.from_bytes(SHAPES, a.to_bytes(), a.weight)  # persisted between every add
        a.add(t, w)
    b = WeightedSum(SHAPES)
    for t, w in reversed(updates):
        b.add(t, w)
    expected = [sum(w * t[i].astype(np.float64) for t, w in updates) / sum(w for _, w in updates) for i in range(2)]
    for got_a, got_b, want in zip(a.mean(), b.mean(), expected, strict=True):
        np.testing.assert_allclose(got_a, want, rtol=1e-12)
        np.testing.assert_allclose(got_b, want, rtol=1e-12)


def test_weighted_sum_bad_inputs_raise_and_change_nothing() -> None:
    s = WeightedSum(SHAPES)
    with pytest.raises(ValueError, match="tensors"):
        s.add([np.ones((2, 3), np.float32)], 1.0)
    with pytest.raises(ValueError, match="shape"):
        s.add([np.ones((3, 2), np.float32), np.ones(4, np.float32)], 1.0)
    with pytest.raises(ValueError, match="weight"):
        s.add([np.ones((2, 3), np.float32), np.ones(4, np.float32)], float("nan"))
    assert s.weight == 0 and not s.total.any()
    with pytest.raises(ValueError, match="bytes"):
        WeightedSum.from_bytes(SHAPES, b"\0" * 8, 0.0)
    with pytest.raises(ValueError, match="empty"):
        s.mean()


def test_weighted_sum_merge_of_shards_equals_one_sum() -> None:
    rng = np.random.default_rng(1)
    updates = [(_tensors(rng), float(w)) for w in (1, 2, 3, 4, 5)]
    whole, shards = WeightedSum(SHAPES), [WeightedSum(SHAPES), WeightedSum(SHAPES)]
    for i, (t, w) in enumerate(updates):
        whole.add(t, w)
        shards[i % 2].add(t, w)
    merged = WeightedSum(SHAPES)
    for shard in shards:
        merged.merge(WeightedSum.from_bytes(SHAPES, shard.to_bytes(), shard.weight))
    for got, want in zip(merged.mean(), whole.mean(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="merge"):
        merged.merge(WeightedSum(((1,),)))
