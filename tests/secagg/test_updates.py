from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import SecAggError
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.simulate import run_round
from secagg.updates import delta_to_ring, flat_length, mean_from_ring, ring_length, weight_level

SHAPES = [(3, 4), (4,), (2, 2, 2)]


def _delta(rng: np.random.Generator, scale: float) -> list[np.ndarray]:
    return [(rng.normal(size=s) * scale).astype(np.float32) for s in SHAPES]


def _flat(tensors: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([t.ravel() for t in tensors]).astype(np.float64)


def test_secure_round_mean_is_the_token_weighted_mean() -> None:
    spec = RingSpec(bits=16, clip=1.0, max_weight=200.0)
    rng = np.random.default_rng(0)
    deltas = [_delta(rng, 0.05) for _ in range(6)]  # norms well below the clip
    weights = [200.0, 10.0, 55.0, 1.0, 120.0, 80.0]
    vectors = {i: delta_to_ring(d, w, spec, rng) for i, (d, w) in enumerate(zip(deltas, weights, strict=True))}
    params = RoundParams(round=1, round_seed=1, n=6, length=ring_length(SHAPES), threshold=4)
    result = mean_from_ring(run_round(params, vectors), 6, SHAPES, spec)
    levels = [weight_level(w, spec) for w in weights]
    assert result.weight == pytest.approx(sum(levels) / spec.top * 200.0) and result.weight == pytest.approx(
        466.0, abs=0.02
    )
    for k, shape in enumerate(SHAPES):
        plain = np.sum([w * d[k] for d, w in zip(deltas, weights, strict=True)], axis=0) / sum(weights)
        uniform = np.mean([d[k] for d in deltas], axis=0)
        assert result.tensors[k].shape == shape and result.tensors[k].dtype == np.float32
        np.testing.assert_allclose(result.tensors[k], plain, atol=6 * 2 * spec.step / (sum(levels) / spec.top))
        assert not np.allclose(result.tensors[k], uniform, atol=1e-3)  # weighted, not the uniform mean


def test_weight_level_rounds_to_the_grid_and_refuses_out_of_range() -> None:
    spec = RingSpec(bits=4, clip=1.0, max_weight=30.0)  # top 15: one level per 2 tokens
    assert [weight_level(w, spec) for w in (30.0, 15.0, 3.0, 2.9, 0.1)] == [15, 8, 2, 1, 1]
    for bad in (0.0, -1.0, 30.5, float("nan"), float("inf")):
        with pytest.raises(SecAggError, match="weight"):
            weight_level(bad, spec)


def test_delta_to_ring_scales_the_clipped_delta_by_the_weight() -> None:
    spec = RingSpec(bits=16, clip=0.5, max_weight=4.0)
    rng = np.random.default_rng(1)
    big = _delta(rng, 10.0)
    vector = delta_to_ring(big, 1.0, spec, rng)
    assert vector.shape == (ring_length(SHAPES),) and vector[0] == round(spec.top / 4)
    back = mean_from_ring(vector, 1, SHAPES, spec)  # one device: its own clipped delta
    flat = _flat(back.tensors)
    assert abs(float(np.linalg.norm(flat)) - 0.5) < 0.01  # scaled down to the clip, direction kept
    direction = _flat(big)
    assert float(flat @ direction / np.linalg.norm(flat) / np.linalg.norm(direction)) > 0.999
    assert back.weight == pytest.approx(1.0, abs=1e-4)


def test_delta_to_ring_non_finite_refused() -> None:
    bad = [np.full(s, np.nan, np.float32) for s in SHAPES]
    with pytest.raises(SecAggError, match="non-finite"):
        delta_to_ring(bad, 1.0, RingSpec(), np.random.default_rng(0))


def test_mean_from_ring_bad_arguments_refused() -> None:
    with pytest.raises(SecAggError, match="coordinates"):
        mean_from_ring(np.zeros(5, np.uint32), 2, SHAPES, RingSpec())
    with pytest.raises(SecAggError, match="coordinates"):
        mean_from_ring(np.zeros(flat_length(SHAPES), np.uint32), 2, SHAPES, RingSpec())  # no weight
    with pytest.raises(SecAggError, match="at least one"):
        mean_from_ring(np.zeros(ring_length(SHAPES), np.uint32), 0, SHAPES, RingSpec())
