from __future__ import annotations

import pytest

from tff_sim.privacy import default_delta, dp_epsilon


def _eps(**overrides: float) -> float:
    args = {"noise_multiplier": 1.0, "clients_per_round": 10, "population": 1000, "rounds": 100, "delta": 1e-5}
    return dp_epsilon(**(args | overrides))  # type: ignore[arg-type]


def test_dp_epsilon_pinned_value() -> None:
    # dp-accounting's RDP accountant, K=10 of N=1000 without replacement, z=1, 100 rounds, delta=1e-5.
    assert _eps() == pytest.approx(1.4825, abs=1e-3)


def test_dp_epsilon_grows_with_rounds_and_sampling_rate() -> None:
    assert _eps(rounds=400) > _eps(rounds=100)
    assert _eps(clients_per_round=50) > _eps()


def test_dp_epsilon_shrinks_with_noise() -> None:
    assert _eps(noise_multiplier=2.0) < _eps()


@pytest.mark.parametrize(
    ("field", "value"),
    [("noise_multiplier", 0.0), ("clients_per_round", 0), ("clients_per_round", 2000), ("rounds", 0), ("delta", 1.0)],
)
def test_dp_epsilon_bad_values_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        _eps(**{field: value})


def test_default_delta_below_one_over_population() -> None:
    assert default_delta(1000) < 1 / 1000
    with pytest.raises(ValueError, match="population"):
        default_delta(0)
