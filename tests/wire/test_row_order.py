"""wire.row_order: the contract's row order, exact indices, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from wire.row_order import ordered_rows, row_order


def test_row_order_exact_indices() -> None:
    # default_rng([data_seed, 0xDA7A, round, client]).permutation(R): pinned, so neither side can drift
    assert row_order(7, data_seed=3, round_num=5, client=1, max_rows=None).tolist() == [3, 4, 5, 0, 6, 1, 2]
    assert row_order(7, data_seed=3, round_num=5, client=1, max_rows=4).tolist() == [3, 4, 5, 0]
    assert row_order(0, data_seed=0, round_num=0, client=0, max_rows=3).tolist() == []


def test_row_order_changes_with_every_seed_part() -> None:
    base = row_order(50, data_seed=1, round_num=2, client=3, max_rows=None).tolist()
    for changed in ({"data_seed": 2}, {"round_num": 3}, {"client": 4}):
        args = {"data_seed": 1, "round_num": 2, "client": 3} | changed
        assert row_order(50, max_rows=None, **args).tolist() != base


def test_ordered_rows_keeps_inputs_and_targets_aligned() -> None:
    inputs = np.arange(12).reshape(6, 2)
    targets = inputs + 100
    x, y = ordered_rows((inputs, targets), data_seed=0, round_num=1, client=2, max_rows=3)
    assert x.shape == (3, 2)
    np.testing.assert_array_equal(y, x + 100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_rows": -1}, "non-negative"),
        ({"client": -1}, "non-negative"),
        ({"data_seed": -1}, "non-negative"),
        ({"max_rows": 0}, "max_rows must be positive or None, got 0"),
    ],
)
def test_row_order_bad_input_named(kwargs: dict[str, int], message: str) -> None:
    args = {"num_rows": 3, "data_seed": 0, "round_num": 0, "client": 0, "max_rows": None} | kwargs
    with pytest.raises(ValueError, match=message):
        row_order(args.pop("num_rows"), **args)  # type: ignore[arg-type]
