from __future__ import annotations

import pytest

from secagg.errors import SecAggError
from secagg.graph import neighbour_count, neighbours


def _check_regular(graph: dict[int, frozenset[int]], k: int) -> None:
    for i, near in graph.items():
        assert i not in near and len(near) == k
        assert all(i in graph[j] for j in near)


def test_neighbours_symmetric_k_regular_and_seeded() -> None:
    graph = neighbours(range(50), 8, round_seed=3)
    _check_regular(graph, 8)
    assert graph == neighbours(range(50), 8, round_seed=3)
    assert graph != neighbours(range(50), 8, round_seed=4)


def test_neighbours_complete_when_k_reaches_n() -> None:
    graph = neighbours(range(5), 6, round_seed=0)
    _check_regular(graph, 4)


def test_neighbour_count_grows_with_log_n() -> None:
    # SecAgg+ (Bell et al. 2020): per-device pairwise keys grow with log n, not n.
    k100, k500 = neighbour_count(100), neighbour_count(500)
    assert (k100, k500) == (28, 36)
    assert k500 / k100 < 1.5 < 500 / 100
    assert neighbour_count(3) == 2 and neighbour_count(1) == 0


@pytest.mark.parametrize(
    ("ids", "k", "seed"), [([1, 1, 2], 2, 0), ([1, 2, 3], 3, 0), ([1, 2, 3], -2, 0), ([1, 2], 2, -1)]
)
def test_neighbours_bad_parameters_refused(ids: list[int], k: int, seed: int) -> None:
    with pytest.raises(SecAggError):
        neighbours(ids, k, seed)


def test_neighbour_count_bad_parameters_refused() -> None:
    with pytest.raises(SecAggError):
        neighbour_count(0)
    with pytest.raises(SecAggError):
        neighbour_count(10, per_log2=0)
