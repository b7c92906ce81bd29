"""Client sampling per round, reproducible from (seed, round).

Each round draws K distinct clients uniformly from those eligible (McMahan et
al. 2017 sample a fraction C of clients per round). The generator is seeded by
(seed, round) alone, so a run resumed at round r draws exactly the clients the
uninterrupted run drew, whatever happened before.
"""

from __future__ import annotations

import numpy as np


def sample_clients(eligible: np.ndarray, k: int, seed: int, round_num: int) -> np.ndarray:
    """``min(k, len(eligible))`` distinct client indices, sorted, for ``round_num``."""
    if k < 1:
        raise ValueError(f"clients per round must be positive, got {k}")
    if round_num < 0:
        raise ValueError(f"round_num must be >= 0, got {round_num}")
    eligible = np.asarray(eligible, dtype=np.int64)
    if eligible.size == 0:
        return eligible
    rng = np.random.default_rng([seed, round_num])
    chosen = rng.choice(eligible, size=min(k, eligible.size), replace=False)
    return np.sort(chosen)
