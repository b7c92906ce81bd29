from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from coordinator.aggregators import update_bound
from coordinator.commit_checks import CommitRefused, check_mean, check_step
from wire.protocol import DEFAULT_NORM_BOUND, TaskCreate


def _task(**overrides: Any) -> TaskCreate:
    body = {"population": "p", "plan_sha256": "0" * 64, "checkpoint_sha256": "1" * 64, "goal_count": 5}
    return TaskCreate.model_validate(body | overrides)


class _Reason:
    """``with _Reason("x"):`` expects CommitRefused with reason x."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, _tb: Any) -> bool:
        assert isinstance(err, CommitRefused), f"expected CommitRefused({self.reason!r}), got {err!r}"
        assert err.reason == self.reason
        return True


def test_update_bound_plain_is_norm_bound_with_a_finite_default() -> None:
    assert update_bound(_task(), 21) == DEFAULT_NORM_BOUND == 10.0
    assert update_bound(_task(norm_bound=None), 21) == 10.0  # null means the default: no unbounded mode
    assert update_bound(_task(norm_bound=0.5), 21) == 0.5


def test_update_bound_secure_adds_one_grid_step_a_coordinate() -> None:
    task = _task(secure_aggregation=True, secagg_clip=2.0, secagg_bits=4, norm_bound=0.5)
    assert update_bound(task, 25) == pytest.approx(2.0 + 5 * 4.0 / 15, rel=1e-15)
    # n devices with total weight W (units of max_weight): the rounding term scales by n / W (secagg.bounds)
    assert update_bound(task, 25, devices=3, weight_units=0.5) == pytest.approx(2.0 + 6 * 5 * 4.0 / 15, rel=1e-15)
    with pytest.raises(ValueError, match="length"):
        update_bound(task, 0)


def test_check_mean_accepts_the_bound_and_refuses_beyond_it() -> None:
    check_mean(np.array([3.0, 4.0]), 5.0)
    check_mean(np.array([3.0, 4.0]) * (1 + 9e-6), 5.0)  # float32 clipping slack
    with _Reason("mean_too_large"):
        check_mean(np.array([3.0, 4.0]) * (1 + 2e-5), 5.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_mean_refuses_non_finite(bad: float) -> None:
    with _Reason("not_finite"):
        check_mean(np.array([0.0, bad]), 1e300)


def test_check_mean_refuses_the_1e30_upload_mixed_into_an_honest_round() -> None:
    # issue 14: one device uploads 1e30 values with weight 32 next to an honest one of weight 8.
    total = 32 * np.full(21, 1e30) + 8 * np.full(21, 0.01)
    with _Reason("mean_too_large"):
        check_mean(total / 40, DEFAULT_NORM_BOUND)


def test_check_step_bounds_the_l2_move_and_float32_overflow() -> None:
    old = np.array([1.0, -1.0])
    check_step(old, old + np.array([0.3, 0.4]), l2_bound=0.5)
    with _Reason("step_too_large"):
        check_step(old, old + np.array([0.3, 0.41]), l2_bound=0.5)
    with _Reason("not_finite"):
        check_step(old, np.array([1e39, 0.0]))  # finite in float64, inf once stored as float32
    with _Reason("not_finite"):
        check_step(old, np.array([math.nan, 0.0]))


def test_check_step_bounds_each_coordinate() -> None:
    old = np.zeros(3)
    check_step(old, np.array([0.1, -0.1, 0.05]), coordinate_bound=0.1)
    with _Reason("step_too_large"):
        check_step(old, np.array([0.1, -0.1001, 0.0]), coordinate_bound=0.1)
    check_step(old, np.array([1e30, 0.0, 0.0]), coordinate_bound=math.inf)


def test_check_step_allows_float64_rounding_of_large_weights() -> None:
    old = np.full(4, 1e6)
    new = old + 1e-3  # each coordinate rounds by up to 1e6 * 2^-53
    check_step(old, new, l2_bound=2e-3)
