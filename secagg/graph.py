"""The SecAgg+ neighbour graph: each device masks with k = O(log n) others, not all n - 1.

Bell et al. 2020 ("Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead", §3) replace the complete graph of Bonawitz et al. 2017 by a random
sparse graph of degree O(log n): the sum stays correct (every pairwise mask
still appears once with each sign) and privacy holds as long as the graph among
honest surviving devices stays connected, which a random k-regular graph with
k = O(log n) does with high probability. We use their construction: a Harary
graph (each device linked to its k/2 successors and predecessors on a ring)
over a random permutation of the devices drawn from the round's public seed,
so every party derives the same graph without messages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from secagg.errors import SecAggError

_GRAPH_SALT = 0x5EC6
DEGREE_PER_LOG2 = 2.0  # k ~ 2 * 2 * log2(n): about 28 neighbours at n = 100, 36 at n = 500


def neighbour_count(n: int, *, per_log2: float = DEGREE_PER_LOG2) -> int:
    """The degree k for ``n`` devices: the even number ``2 * ceil(per_log2 * log2 n)``, at most n - 1.

    At or below that size the graph is complete (plain Bonawitz et al. 2017).
    """
    if n < 1:
        raise SecAggError("bad_config", f"a round needs at least one device, got {n}")
    if per_log2 <= 0:
        raise SecAggError("bad_config", f"per_log2 must be positive, got {per_log2}")
    if n == 1:
        return 0
    return min(n - 1, 2 * math.ceil(per_log2 * math.log2(n)))


def neighbours(ids: Sequence[int], k: int, round_seed: int) -> dict[int, frozenset[int]]:
    """Each device's neighbours in the Harary graph H(k, n) over a seeded permutation of ``ids``.

    Symmetric (j in N(i) iff i in N(j)); every device has exactly ``k`` neighbours
    when k is even and k < n; complete when k >= n - 1.
    """
    members = sorted(set(ids))
    n = len(members)
    if len(members) != len(ids):
        raise SecAggError("bad_config", "device ids must be distinct")
    if k < 0 or k % 2:
        raise SecAggError("bad_config", f"the neighbour count must be even and non-negative, got {k}")
    if round_seed < 0:
        raise SecAggError("bad_config", f"the round seed must be non-negative, got {round_seed}")
    if k >= n - 1:
        return {i: frozenset(members) - {i} for i in members}
    order = np.random.default_rng([round_seed, _GRAPH_SALT, n]).permutation(n)  # (n,) ring position -> member
    ring = [members[int(p)] for p in order]
    result: dict[int, set[int]] = {i: set() for i in members}
    for position, device in enumerate(ring):
        for step in range(1, k // 2 + 1):
            other = ring[(position + step) % n]
            result[device].add(other)
            result[other].add(device)
    return {i: frozenset(s) for i, s in result.items()}
