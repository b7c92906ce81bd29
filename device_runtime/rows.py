"""A device's local training rows and batches, in exactly the order simulation uses.

The contract (``wire.contract``; issue 8, matching simulation and deployment
bit for bit) fixes the order: rows from ``model.make_sequences``, ordered and
capped by ``wire.row_order`` (which simulation calls too), repeated ``epochs``
times and cut into consecutive batches; the last partial batch is filled with
all-PAD rows, which add nothing to the masked loss or its gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from wire.row_order import ordered_rows


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

    rows = make_sequences(examples, seq_len, bos_id=bos_id, pad_id=pad_id)  # (R, T) each
    return ordered_rows(rows, data_seed=seed, round_num=round_num, client=client, max_rows=max_rows)


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
