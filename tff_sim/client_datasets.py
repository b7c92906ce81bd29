"""Clients' messages as the tf.data datasets TFF feeds to client training.

A client's messages become fixed-size next-word rows (``model.make_sequences``),
ordered and capped by the contract's ``wire.row_order`` (seeded from (data seed,
round, client), so a resumed run replays the same batches and a phone trains
on the same rows: ``device_runtime.rows`` calls it too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from data_tools import ClientData
from model import ModelConfig, make_sequences
from wire.row_order import ordered_rows


def client_rows(
    data: ClientData,
    client: int,
    config: ModelConfig,
    seq_len: int,
    *,
    seed: int,
    round_num: int,
    max_rows: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One client's (inputs, targets) rows for ``round_num``, shuffled reproducibly."""
    rows = make_sequences(data.client_examples(client), seq_len, bos_id=config.bos_id, pad_id=config.pad_id)  # (R, T)
    return ordered_rows(rows, data_seed=seed, round_num=round_num, client=client, max_rows=max_rows)


def to_dataset(rows: tuple[np.ndarray, np.ndarray], batch_size: int, epochs: int = 1) -> tf.data.Dataset:
    """Batches of (inputs, targets), the rows repeated ``epochs`` times in the same order."""
    return tf.data.Dataset.from_tensor_slices(rows).repeat(epochs).batch(batch_size)


def round_datasets(
    data: ClientData,
    clients: Sequence[int] | np.ndarray,
    config: ModelConfig,
    seq_len: int,
    batch_size: int,
    *,
    epochs: int,
    seed: int,
    round_num: int,
    max_rows: int | None,
) -> tuple[list[tf.data.Dataset], int]:
    """The datasets of ``clients`` for one round, and the tokens they hold (non-pad targets)."""
    datasets, tokens = [], 0
    for client in clients:
        rows = client_rows(data, int(client), config, seq_len, seed=seed, round_num=round_num, max_rows=max_rows)
        tokens += int(np.count_nonzero(rows[1] != config.pad_id))
        datasets.append(to_dataset(rows, batch_size, epochs))
    return datasets, tokens


def element_spec(seq_len: int) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    return (tf.TensorSpec([None, seq_len], tf.int32), tf.TensorSpec([None, seq_len], tf.int32))
