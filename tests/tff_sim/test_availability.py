from __future__ import annotations

import numpy as np
import pytest

from tff_sim.availability import AvailabilityConfig, ClientSchedules, eligible_clients

DAY_ROUNDS = 24 * 6  # rounds of 10 minutes in a day


def test_eligible_clients_always_is_everyone() -> None:
    assert eligible_clients(5, 17, AvailabilityConfig()).tolist() == [0, 1, 2, 3, 4]


def test_eligible_clients_diurnal_follows_each_local_night() -> None:
    config = AvailabilityConfig(mode="diurnal", skip_probability=0.0, seed=4)
    n = 50
    schedules = ClientSchedules.draw(n, seed=4)
    for round_num in range(0, DAY_ROUNDS, 7):
        minute = round_num * config.round_minutes
        local = minute + schedules.utc_offset_minutes
        expected = [c for c in range(n) if (local[c] - schedules.window_start[c]) % 1440 < schedules.window_length[c]]
        assert eligible_clients(n, round_num, config).tolist() == expected


def test_eligible_clients_diurnal_share_matches_window_lengths() -> None:
    config = AvailabilityConfig(mode="diurnal", skip_probability=0.0, seed=1)
    n = 400
    total = sum(len(eligible_clients(n, r, config)) for r in range(DAY_ROUNDS))
    share = total / (n * DAY_ROUNDS)
    expected = ClientSchedules.draw(n, seed=1).window_length.mean() / 1440
    assert share == pytest.approx(expected, abs=0.01)


def test_eligible_clients_diurnal_moves_with_time_zones() -> None:
    config = AvailabilityConfig(mode="diurnal", seed=2)
    night_a = set(eligible_clients(300, 0, config).tolist())
    night_b = set(eligible_clients(300, DAY_ROUNDS // 2, config).tolist())
    assert night_a and night_b
    assert len(night_a & night_b) < min(len(night_a), len(night_b))


def test_eligible_clients_skip_probability_thins_the_night() -> None:
    base = AvailabilityConfig(mode="diurnal", skip_probability=0.0, seed=5)
    thin = AvailabilityConfig(mode="diurnal", skip_probability=0.5, seed=5)
    full = sum(len(eligible_clients(400, r, base)) for r in range(0, DAY_ROUNDS, 6))
    half = sum(len(eligible_clients(400, r, thin)) for r in range(0, DAY_ROUNDS, 6))
    assert 0.4 < half / full < 0.6
    for r in range(0, DAY_ROUNDS, 12):  # skipping only removes clients
        assert set(eligible_clients(400, r, thin).tolist()) <= set(eligible_clients(400, r, base).tolist())


def test_eligible_clients_deterministic_per_round() -> None:
    config = AvailabilityConfig(mode="diurnal", seed=9)
    assert np.array_equal(eligible_clients(100, 33, config), eligible_clients(100, 33, config))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mode": "weekly"}, "weekly"), ({"round_minutes": 0}, "round_minutes"), ({"skip_probability": 1.0}, "skip")],
)
def test_availability_config_bad_values_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AvailabilityConfig(**kwargs)  # type: ignore[arg-type]
