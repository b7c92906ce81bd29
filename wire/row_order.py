"""Which of a client's rows it trains on in a round, and in what order: the one definition.

Part of the client-training contract (``wire.contract``): a client's messages
become fixed-size next-word rows (``model.make_sequences``); the rows are then
shuffled by ``default_rng([data_seed, 0xDA7A, round, client])`` and the first
``max_rows`` kept, a fresh seeded subset each round (production systems cap
the examples a device uses per round; Bonawitz et al. 2019). Simulation
(``tff_sim.client_datasets``) and phones (``device_runtime.rows``) both call
this, so a deployed round sees exactly the simulated round's batches, and a
resumed simulation replays them.
"""

from __future__ import annotations

import numpy as np

DATASET_SALT = 0xDA7A


def row_order(num_rows: int, *, data_seed: int, round_num: int, client: int, max_rows: int | None) -> np.ndarray:
    """Indices (int64, at most ``max_rows`` of them) of the rows a client trains on in ``round_num``, in order."""
    if num_rows < 0 or round_num < 0 or client < 0 or data_seed < 0:
        raise ValueError(
            f"need non-negative num_rows, round, client and seed, got {num_rows}, {round_num}, {client}, {data_seed}"
        )
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be positive or None, got {max_rows}")
    order = np.random.default_rng([data_seed, DATASET_SALT, round_num, client]).permutation(num_rows)
    return order if max_rows is None else order[:max_rows]


def ordered_rows(
    rows: tuple[np.ndarray, np.ndarray], *, data_seed: int, round_num: int, client: int, max_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (R, T), reordered and capped by ``row_order``."""
    inputs, targets = rows
    order = row_order(len(inputs), data_seed=data_seed, round_num=round_num, client=client, max_rows=max_rows)
    return inputs[order], targets[order]
