from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.optimizers import (
    AdamState,
    ServerOptimizerConfig,
    dp_noise,
    dp_noised_mean,
    fedadam_max_step,
    fedadam_step,
    fedavg_step,
)


def test_fedavg_step_adds_lr_times_mean_delta() -> None:
    np.testing.assert_array_equal(fedavg_step(np.array([1.0, 2.0]), np.array([0.5, -1.0]), 0.5), [1.25, 1.5])


def test_fedadam_step_matches_hand_computed_first_two_steps() -> None:
    cfg = ServerOptimizerConfig(name="fedadam", learning_rate=0.1, beta1=0.9, beta2=0.99, epsilon=1e-3)
    w = np.array([1.0, -1.0])
    delta = np.array([0.2, -0.4])
    w1, s1 = fedadam_step(w, delta, AdamState.zeros(2), cfg)
    # g = -delta = [-0.2, 0.4]; m = 0.1 g; v = 0.01 g^2; lr_t = 0.1 sqrt(0.01) / 0.1 = 0.1
    m = 0.1 * np.array([-0.2, 0.4])
    v = 0.01 * np.array([0.04, 0.16])
    np.testing.assert_allclose(w1, w - 0.1 * m / (np.sqrt(v) + 1e-3), rtol=1e-15)
    assert s1.step == 1
    w2, s2 = fedadam_step(w1, delta, s1, cfg)
    m2 = 0.9 * m + 0.1 * np.array([-0.2, 0.4])
    v2 = 0.99 * v + 0.01 * np.array([0.04, 0.16])
    lr2 = 0.1 * math.sqrt(1 - 0.99**2) / (1 - 0.9**2)
    np.testing.assert_allclose(w2, w1 - lr2 * m2 / (np.sqrt(v2) + 1e-3), rtol=1e-15)
    restored = AdamState.from_bytes(s2.to_bytes(), 2)
    np.testing.assert_array_equal(restored.m, s2.m)
    np.testing.assert_array_equal(restored.v, s2.v)
    assert restored.step == 2


@pytest.mark.parametrize("kwargs", [{"name": "sgd"}, {"learning_rate": 0}, {"beta1": 1.0}, {"epsilon": 0}])
def test_server_optimizer_config_bad_values_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ServerOptimizerConfig(**kwargs)  # type: ignore[arg-type]


def test_adam_state_from_bad_bytes_raises() -> None:
    with pytest.raises(ValueError, match="bytes"):
        AdamState.from_bytes(b"\0" * 9, 2)


def test_fedadam_max_step_is_lr_at_first_step_and_hand_computed_later() -> None:
    cfg = ServerOptimizerConfig(name="fedadam", learning_rate=0.5, beta1=0.9, beta2=0.99)
    assert fedadam_max_step(cfg, 1) == pytest.approx(0.5, rel=1e-15)
    # t=2: sqrt(1-0.99^2)/(1-0.9^2) * 0.1/0.1 * sqrt(1 + 0.81/0.99) = 1.0011325744522
    assert fedadam_max_step(cfg, 2) == pytest.approx(0.5 * 1.0011325744522115, rel=1e-12)
    # t -> inf with TFF's betas: (1-b1) / sqrt((1-b2)(1 - b1^2/b2)) = 7.2702918 lr
    assert fedadam_max_step(ServerOptimizerConfig(name="fedadam"), 10**6) == pytest.approx(7.2702918, rel=1e-7)
    assert fedadam_max_step(ServerOptimizerConfig(name="fedadam", beta2=0.0), 3) == math.inf
    with pytest.raises(ValueError, match="from 1"):
        fedadam_max_step(cfg, 0)


def test_fedadam_max_step_bounds_every_step_of_wild_gradients() -> None:
    cfg = ServerOptimizerConfig(name="fedadam", learning_rate=0.01, epsilon=1e-12)
    rng = np.random.default_rng(3)
    w, state = np.zeros(64), AdamState.zeros(64)
    worst = 0.0
    for _ in range(300):  # gradients whose scale jumps by 20 orders of magnitude, the worst case for |m|/sqrt(v)
        delta = rng.normal(size=64) * 10.0 ** rng.integers(-10, 10)
        new, state = fedadam_step(w, delta, state, cfg)
        ratio = float(np.max(np.abs(new - w))) / fedadam_max_step(cfg, state.step)
        assert ratio <= 1 + 1e-9
        worst, w = max(worst, ratio), new
    assert worst > 0.5  # the bound is not vacuous: some step comes near it


def test_dp_noise_is_fresh_at_every_call_with_std() -> None:
    np.random.seed(0)  # no global or task seed reaches it
    a = dp_noise(200_000, 0.1)
    np.random.seed(0)
    b = dp_noise(200_000, 0.1)
    assert not np.array_equal(a, b)
    assert a.shape == (200_000,) and a.std() == pytest.approx(0.1, rel=0.01) and abs(a.mean()) < 1e-3
    with pytest.raises(ValueError, match="std"):
        dp_noise(3, float("nan"))


def test_dp_noised_mean_adds_noise_then_divides_by_goal() -> None:
    got = dp_noised_mean(np.array([1.0, 2.0]), np.array([0.5, -1.0]), goal=2)
    np.testing.assert_array_equal(got, [0.75, 0.5])
    with pytest.raises(ValueError, match="goal"):
        dp_noised_mean(np.zeros(2), np.zeros(2), goal=0)
    with pytest.raises(ValueError, match="shape"):
        dp_noised_mean(np.zeros(2), np.zeros(3), goal=1)
