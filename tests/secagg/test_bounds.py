"""issue 14 point 3: one device's off-grid input must not reach the committed mean unnoticed."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.bounds import check_sum, mean_l2_bound
from secagg.errors import SecAggError
from secagg.messages import RoundParams
from secagg.ring import RingSpec
from secagg.simulate import run_round
from secagg.updates import delta_to_ring, mean_from_ring, ring_length

SHAPES = [(40,), (10, 6)]
SPEC = RingSpec(bits=16, clip=1.0, max_weight=100.0)
PARAMS = RoundParams(round=1, round_seed=3, n=5, length=ring_length(SHAPES), threshold=3)


def _honest(n: int, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: delta_to_ring([rng.normal(0, 0.02, s) for s in SHAPES], 50.0 + i, SPEC, rng) for i in range(n)}


def _norm(tensors: list[np.ndarray]) -> float:
    return float(np.linalg.norm(np.concatenate([t.ravel() for t in tensors])))


def test_check_sum_largest_honest_sum_passes_box_corner_refused() -> None:
    # Every device at full weight, every coordinate at the top or bottom level: the largest honest sums.
    n, m = 5, ring_length(SHAPES) - 1
    for level in (0, SPEC.top):
        total = np.concatenate([[n * SPEC.top], np.full(m, n * level)]).astype(np.uint32)
        with pytest.raises(SecAggError, match="L2 norm"):  # a box corner is outside the clip ball...
            check_sum(total, n, SPEC)
    one_hot = np.full(m, n * SPEC.top // 2, np.uint64)
    one_hot[0] += n * (SPEC.top - SPEC.top // 2)  # ...each device's whole clip on one coordinate is not
    check_sum(np.concatenate([[n * SPEC.top], one_hot]).astype(np.uint32), n, SPEC)
    check_sum(run_round(PARAMS, _honest(5)), 5, SPEC)


def test_check_sum_one_off_grid_input_refused() -> None:
    # The attack of issue 14: honest mean norm ~0.14; one device's levels past the grid wrapped the ring.
    inputs = _honest(5)
    honest = mean_from_ring(run_round(PARAMS, inputs), 5, SHAPES, SPEC)
    assert 0.05 < _norm(honest.tensors) < 0.5
    inputs[4] = inputs[4].copy()
    inputs[4][1:] = np.uint32(1 << 31)  # every coordinate far off the grid: the ring sum wraps
    with pytest.raises(SecAggError) as err:
        mean_from_ring(run_round(PARAMS, inputs), 5, SHAPES, SPEC)
    assert err.value.reason == "out_of_range" and "coordinate" in str(err.value)


def test_check_sum_inflated_weight_refused() -> None:
    inputs = _honest(5)
    inputs[2] = inputs[2].copy()
    inputs[2][0] = np.uint32(5 * SPEC.top)  # claims five devices' full weight: the level sum passes n * top
    with pytest.raises(SecAggError, match="weights' level sum") as err:
        check_sum(run_round(PARAMS, inputs), 5, SPEC)
    assert err.value.reason == "out_of_range"


def test_check_sum_in_box_but_outside_the_clip_ball_refused() -> None:
    # Each coordinate inside [-n clip, n clip], but far more L2 energy than clipped updates can carry.
    inputs = _honest(5)
    inputs[0] = inputs[0].copy()
    inputs[0][1:] = np.uint32(SPEC.top)  # the top level everywhere: L2 norm sqrt(m) clip
    with pytest.raises(SecAggError, match="L2 norm") as err:
        check_sum(run_round(PARAMS, inputs), 5, SPEC)
    assert err.value.reason == "out_of_range"


def test_check_sum_zero_weight_refused() -> None:
    total = np.zeros(ring_length(SHAPES), np.uint32)
    total[1:] = 5 * (SPEC.top // 2)
    with pytest.raises(SecAggError, match=r"outside \[5, "):
        check_sum(total, 5, SPEC)


def test_mean_l2_bound_covers_honest_rounds_of_tiny_weights() -> None:
    # Every device rounds each coordinate by up to a step whatever its weight, so tiny weights
    # amplify the rounding in S / W: an honest mean can exceed clip + sqrt(m) step, never the bound.
    rng = np.random.default_rng(7)
    tiny = 0.001  # level 1 of 65535 at max_weight 100
    inputs = {i: delta_to_ring([rng.normal(0, 0.02, s) for s in SHAPES], tiny, SPEC, rng) for i in range(5)}
    result = mean_from_ring(run_round(PARAMS, inputs), 5, SHAPES, SPEC)
    m = ring_length(SHAPES) - 1
    norm = _norm(result.tensors)
    assert norm > SPEC.clip + np.sqrt(m) * SPEC.step  # the unweighted bound would refuse this honest round
    assert norm <= mean_l2_bound(SPEC, 5, 5 / SPEC.top, m)
    assert mean_l2_bound(SPEC, 5, 5.0, m) == pytest.approx(SPEC.clip + np.sqrt(m) * SPEC.step)
