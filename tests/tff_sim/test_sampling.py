from __future__ import annotations

import numpy as np
import pytest

from tff_sim.sampling import sample_clients


def test_sample_clients_distinct_sorted_subset() -> None:
    eligible = np.array([3, 5, 8, 13, 21, 34, 55])
    chosen = sample_clients(eligible, 4, seed=1, round_num=0)
    assert len(chosen) == 4
    assert len(set(chosen.tolist())) == 4
    assert set(chosen.tolist()) <= set(eligible.tolist())
    assert np.all(np.diff(chosen) > 0)


def test_sample_clients_same_seed_and_round_same_draw() -> None:
    eligible = np.arange(100)
    first = sample_clients(eligible, 10, seed=7, round_num=42)
    sample_clients(eligible, 10, seed=7, round_num=41)  # other draws in between change nothing
    assert np.array_equal(first, sample_clients(eligible, 10, seed=7, round_num=42))


def test_sample_clients_round_and_seed_change_the_draw() -> None:
    eligible = np.arange(1000)
    base = sample_clients(eligible, 10, seed=7, round_num=1)
    assert not np.array_equal(base, sample_clients(eligible, 10, seed=7, round_num=2))
    assert not np.array_equal(base, sample_clients(eligible, 10, seed=8, round_num=1))


def test_sample_clients_exact_draw_pinned() -> None:
    # Pins the generator: a change here silently changes every experiment's clients.
    expected = np.sort(np.random.default_rng([0, 0]).choice(np.arange(20), size=5, replace=False))
    assert np.array_equal(sample_clients(np.arange(20), 5, seed=0, round_num=0), expected)


def test_sample_clients_fewer_eligible_than_k_takes_all() -> None:
    assert sample_clients(np.array([9, 2]), 5, seed=0, round_num=3).tolist() == [2, 9]
    assert sample_clients(np.array([], dtype=np.int64), 5, seed=0, round_num=3).size == 0


def test_sample_clients_uniform_over_many_rounds() -> None:
    counts = np.zeros(20)
    for r in range(2000):
        counts[sample_clients(np.arange(20), 5, seed=3, round_num=r)] += 1
    assert counts.sum() == 10000
    assert np.all(np.abs(counts / 2000 - 0.25) < 0.04)


@pytest.mark.parametrize(("k", "round_num", "message"), [(0, 0, "clients per round"), (3, -1, "round_num")])
def test_sample_clients_bad_arguments_named(k: int, round_num: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_clients(np.arange(5), k, seed=0, round_num=round_num)
