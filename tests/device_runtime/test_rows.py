"""device_runtime.rows: the contract's rows, batches as .repeat(epochs).batch(B) with PAD fill."""

from __future__ import annotations

import numpy as np
import pytest

from device_runtime.rows import client_rows, num_batches, target_tokens, training_batches
from tff_sim.client_datasets import to_dataset
from wire.row_order import row_order


def test_client_rows_are_the_contracts_order() -> None:
    examples = [np.array(e, np.int32) for e in ([5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16], [17], [18, 19, 20])]
    inputs, targets = client_rows(examples, 3, bos_id=2, pad_id=0, seed=3, round_num=5, client=1, max_rows=4)
    # make_sequences gives 7 rows: [2 5 6] [2 8 0] [2 10 11] [12 13 14] [15 0 0] [2 0 0] [2 18 19]
    assert row_order(7, data_seed=3, round_num=5, client=1, max_rows=4).tolist() == [3, 4, 5, 0]
    assert inputs.tolist() == [[12, 13, 14], [15, 0, 0], [2, 0, 0], [2, 5, 6]]
    assert targets.shape == (4, 3)


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
