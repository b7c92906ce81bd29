from __future__ import annotations

import math

import pytest

from privacy.accounting import default_delta, dp_epsilon, dp_epsilon_of_rounds


def _eps(**overrides: float) -> float:
    args = {"noise_multiplier": 1.0, "clients_per_round": 10, "population": 1000, "rounds": 100, "delta": 1e-5}
    return dp_epsilon(**(args | overrides))  # type: ignore[arg-type]


def _exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """The exact epsilon of one Gaussian mechanism with sensitivity/std = mu (Balle & Wang 2018, Thm. 8)."""

    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    def delta_of(eps: float) -> float:
        return phi(-eps / mu + mu / 2) - math.exp(eps) * phi(-eps / mu - mu / 2)

    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


def test_dp_epsilon_pinned_value() -> None:
    # K=10 of N=1000 without replacement, z=1 (GaussianDpEvent(0.5) under replace-one), 100 rounds, delta=1e-5.
    assert _eps() == pytest.approx(11.2127, abs=1e-3)


def test_dp_epsilon_issue_example_is_about_14() -> None:
    # issue 14 point 4: N=715, K=20, z=1, 100 rounds was reported as 2.5.
    eps = dp_epsilon(noise_multiplier=1.0, clients_per_round=20, population=715, rounds=100, delta=default_delta(715))
    assert eps == pytest.approx(14.0417, abs=1e-3)


def test_dp_epsilon_counts_replace_one_sensitivity_twice_the_clip() -> None:
    # No subsampling (K = N), one round: a Gaussian mechanism with std z*S and replace-one sensitivity 2S, so
    # mu = 2/z. RDP's epsilon is an upper bound of the exact one; sensitivity S (mu = 1/z) would fall below it.
    z, delta = 2.0, 1e-5
    eps = _eps(noise_multiplier=z, clients_per_round=50, population=50, rounds=1, delta=delta)
    exact = _exact_gaussian_epsilon(2 / z, delta)
    assert exact < eps < 1.35 * exact
    assert _exact_gaussian_epsilon(1 / z, delta) < 0.6 * exact


def test_dp_epsilon_of_rounds_composes_each_rounds_sample_size() -> None:
    sizes = [20] * 50 + [15] * 50
    eps = dp_epsilon_of_rounds(noise_multiplier=1.0, population=715, sample_sizes=sizes, delta=1e-3)
    assert eps == pytest.approx(11.9677, abs=1e-3)
    full = dp_epsilon(noise_multiplier=1.0, clients_per_round=20, population=715, rounds=100, delta=1e-3)
    fewer = dp_epsilon(noise_multiplier=1.0, clients_per_round=15, population=715, rounds=100, delta=1e-3)
    assert fewer < eps < full
    assert dp_epsilon_of_rounds(noise_multiplier=1.0, population=715, sample_sizes=[], delta=1e-3) == 0.0


def test_dp_epsilon_grows_with_rounds_and_sampling_rate() -> None:
    assert _eps(rounds=400) > _eps(rounds=100)
    assert _eps(clients_per_round=50) > _eps()


def test_dp_epsilon_shrinks_with_noise() -> None:
    assert _eps(noise_multiplier=2.0) < _eps()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("noise_multiplier", 0.0),
        ("clients_per_round", 0),
        ("clients_per_round", 2000),
        ("rounds", 0),
        ("delta", 1.0),
        ("population", 0),
    ],
)
def test_dp_epsilon_bad_values_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        _eps(**{field: value})


def test_default_delta_below_one_over_population() -> None:
    assert default_delta(1000) == pytest.approx(1000**-1.1, rel=1e-12)
    assert default_delta(1000) < 1 / 1000
    with pytest.raises(ValueError, match="population"):
        default_delta(0)
