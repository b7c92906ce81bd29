"""device_runtime.rows: the same rows as simulation, batches as .repeat(epochs).batch(B) with PAD fill."""

from __future__ import annotations

import numpy as np
import pytest

from data_tools import ClientData
from device_runtime.rows import client_rows, num_batches, target_tokens, training_batches
from model import ModelConfig
from tff_sim.client_datasets import client_rows as sim_client_rows
from tff_sim.client_datasets import to_dataset

CONFIG = ModelConfig.from_preset("tiny", vocab_size=30)


def _client_data(examples: list[list[int]]) -> ClientData:
    tokens = np.array([t for e in examples for t in e], np.int32)
    offsets = np.concatenate(([0], np.cumsum([len(e) for e in examples]))).astype(np.int64)
    return ClientData(
        name="train",
        client_ids=("a", "b"),
        tokens=tokens,
        example_offsets=offsets,
        client_offsets=np.array([0, 2, len(examples)], np.int64),
        timestamps=np.zeros(len(examples)),
    )


@pytest.mark.parametrize(("seed", "round_num", "max_rows"), [(0, 0, None), (3, 5, 2), (9, 1, 100)])
def test_client_rows_match_simulation_exactly(seed: int, round_num: int, max_rows: int | None) -> None:
    examples = [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16], [17], [18, 19, 20, 21]]
    data = _client_data(examples)
    ours = client_rows(
        data.client_examples(1),
        3,
        bos_id=CONFIG.bos_id,
        pad_id=CONFIG.pad_id,
        seed=seed,
        round_num=round_num,
        client=1,
        max_rows=max_rows,
    )
    theirs = sim_client_rows(data, 1, CONFIG, 3, seed=seed, round_num=round_num, max_rows=max_rows)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_training_batches_match_tf_data_repeat_batch() -> None:
    rng = np.random.default_rng(0)
    rows = (rng.integers(1, 9, (5, 3)).astype(np.int32), rng.integers(1, 9, (5, 3)).astype(np.int32))
    ours = list(training_batches(rows, 4, 2, pad_id=0))
    theirs = [(x.numpy(), y.numpy()) for x, y in to_dataset(rows, 4, 2)]
    assert len(ours) == len(theirs) == num_batches(5, 4, 2) == 3
    for (x, y), (tx, ty) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(x[: len(tx)], tx)
        np.testing.assert_array_equal(y[: len(ty)], ty)
        assert (x[len(tx) :] == 0).all() and (y[len(ty) :] == 0).all()
        assert x.shape == (4, 3) and x.dtype == np.int32


def test_training_batches_no_rows() -> None:
    empty = (np.zeros((0, 3), np.int32), np.zeros((0, 3), np.int32))
    assert list(training_batches(empty, 2, 3, pad_id=0)) == []


def test_num_batches_exact_and_bad_input() -> None:
    assert [num_batches(r, 4, e) for r, e in [(0, 1), (4, 1), (5, 1), (5, 3)]] == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(3, 0, 1)


def test_target_tokens_counts_non_pad() -> None:
    assert target_tokens(np.array([[1, 2, 0], [0, 0, 3]]), 0) == 3
