from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.optimizers import AdamState, ServerOptimizerConfig, dp_noised_mean, fedadam_step, fedavg_step


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


def test_dp_noised_mean_is_reproducible_per_round_with_std_z_s_over_goal() -> None:
    total = np.zeros(200_000)
    a = dp_noised_mean(total, goal=10, norm_bound=2.0, noise_multiplier=0.5, seed=1, round=3)
    b = dp_noised_mean(total, goal=10, norm_bound=2.0, noise_multiplier=0.5, seed=1, round=3)
    c = dp_noised_mean(total, goal=10, norm_bound=2.0, noise_multiplier=0.5, seed=1, round=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() == pytest.approx(0.5 * 2.0 / 10, rel=0.01)
