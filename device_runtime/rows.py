"""A device's local training rows and batches, in exactly the order simulation uses.

The contract (and issue 8, matching simulation and deployment bit for bit)
fixes the order: rows from ``model.make_sequences``, shuffled by
``default_rng([seed, 0xDA7A, round, client]).permutation(R)``, capped to
``max_rows``, repeated ``epochs`` times and cut into consecutive batches; the
last partial batch is filled with all-PAD rows, which add nothing to the
masked loss or its gradient. :func:`client_rows` mirrors
``tff_sim.client_datasets.client_rows`` line for line (``device_runtime`` may
not import ``tff_sim``; a test compares the two).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

DATASET_SALT = 0xDA7A  # the same salt as tff_sim.client_datasets


def client_rows(
    examples: Sequence[np.ndarray],
    seq_len: int,
    *,
    bos_id: int,
    pad_id: int,
    seed: int,
    round_num: int,
    client: int,
    max_rows: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One device's (inputs, targets) rows for ``round_num``, each int32 (R, T), shuffled reproducibly."""
    from model import make_sequences  # deferred: ``model`` loads TensorFlow, which CLI start-up must not pay for

    inputs, targets = make_sequences(examples, seq_len, bos_id=bos_id, pad_id=pad_id)  # (R, T) each
    rng = np.random.default_rng([seed, DATASET_SALT, round_num, client])
    order = rng.permutation(len(inputs))
    if max_rows is not None:
        order = order[:max_rows]
    return inputs[order], targets[order]


def num_batches(rows: int, batch_size: int, epochs: int) -> int:
    """Batches of ``batch_size`` that ``rows`` rows repeated ``epochs`` times make (the last may be partial)."""
    if batch_size < 1 or epochs < 1 or rows < 0:
        raise ValueError(f"need rows >= 0, batch_size >= 1, epochs >= 1; got {rows}, {batch_size}, {epochs}")
    return -(-rows * epochs // batch_size)


def training_batches(
    rows: tuple[np.ndarray, np.ndarray], batch_size: int, epochs: int, *, pad_id: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Fixed-size (B, T) batches of the rows repeated ``epochs`` times, as ``.repeat(epochs).batch(B)``.

    A batch may span an epoch boundary; the last one is padded with all-PAD rows
    (the on-device graph has a static batch size).
    """
    inputs, targets = rows  # (R, T) each
    num_batches(len(inputs), batch_size, epochs)  # validates
    repeated_x = np.tile(inputs, (epochs, 1))  # (E*R, T)
    repeated_y = np.tile(targets, (epochs, 1))
    for start in range(0, len(repeated_x), batch_size):
        yield (
            _pad(repeated_x[start : start + batch_size], batch_size, pad_id),
            _pad(repeated_y[start : start + batch_size], batch_size, pad_id),
        )


def evaluation_batches(
    rows: tuple[np.ndarray, np.ndarray], batch_size: int, *, pad_id: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows once, in fixed-size (B, T) batches, the last padded with all-PAD rows."""
    return training_batches(rows, batch_size, 1, pad_id=pad_id)


def _pad(block: np.ndarray, batch_size: int, pad_id: int) -> np.ndarray:
    if len(block) == batch_size:
        return np.ascontiguousarray(block, dtype=np.int32)
    out = np.full((batch_size, block.shape[1]), pad_id, dtype=np.int32)  # (B, T)
    out[: len(block)] = block
    return out


def target_tokens(targets: np.ndarray, pad_id: int) -> int:
    """Non-pad targets of the rows (per epoch); the FedAvg weight is this times the epochs."""
    return int(np.count_nonzero(targets != pad_id))
