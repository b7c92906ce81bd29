from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import SecAggError
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.simulate import run_round
from secagg.updates import delta_to_ring, flat_length, mean_from_ring

SHAPES = [(3, 4), (4,), (2, 2, 2)]


def _delta(rng: np.random.Generator, scale: float) -> list[np.ndarray]:
    return [(rng.normal(size=s) * scale).astype(np.float32) for s in SHAPES]


def test_secure_round_mean_close_to_plain_mean() -> None:
    spec = RingSpec(bits=16, clip=1.0)
    rng = np.random.default_rng(0)
    deltas = [_delta(rng, 0.05) for _ in range(6)]  # norms well below the clip
    vectors = {i: delta_to_ring(d, spec, rng) for i, d in enumerate(deltas)}
    params = RoundParams(round=1, round_seed=1, n=6, length=flat_length(SHAPES), threshold=4)
    mean = mean_from_ring(run_round(params, vectors), 6, SHAPES, spec)
    for k, shape in enumerate(SHAPES):
        plain = np.mean([d[k] for d in deltas], axis=0)
        assert mean[k].shape == shape and mean[k].dtype == np.float32
        np.testing.assert_allclose(mean[k], plain, atol=2 * 2.0 / spec.top)


def test_delta_to_ring_clips_to_the_bound() -> None:
    spec = RingSpec(bits=16, clip=0.5)
    rng = np.random.default_rng(1)
    big = _delta(rng, 10.0)
    back = mean_from_ring(delta_to_ring(big, spec, rng), 1, SHAPES, spec)
    flat = np.concatenate([b.ravel() for b in back])
    assert abs(float(np.linalg.norm(flat)) - 0.5) < 0.01  # scaled down to the clip, direction kept
    direction = np.concatenate([b.ravel() for b in big]).astype(np.float64)
    assert float(flat @ direction / np.linalg.norm(flat) / np.linalg.norm(direction)) > 0.999


def test_delta_to_ring_non_finite_refused() -> None:
    bad = [np.full(s, np.nan, np.float32) for s in SHAPES]
    with pytest.raises(SecAggError, match="non-finite"):
        delta_to_ring(bad, RingSpec(), np.random.default_rng(0))


def test_mean_from_ring_bad_arguments_refused() -> None:
    with pytest.raises(SecAggError, match="coordinates"):
        mean_from_ring(np.zeros(5, np.uint32), 2, SHAPES, RingSpec())
    with pytest.raises(SecAggError, match="at least one"):
        mean_from_ring(np.zeros(flat_length(SHAPES), np.uint32), 0, SHAPES, RingSpec())
