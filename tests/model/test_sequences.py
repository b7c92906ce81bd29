"""Tests for turning messages into fixed-size next-word rows (model/sequences.py)."""

from __future__ import annotations

import numpy as np
import pytest

from model.sequences import length_buckets, make_sequences

PAD, BOS = 0, 2


def _ex(*ids: int) -> np.ndarray:
    return np.array(ids, dtype=np.int64)


def _random_corpus(seed: int, n: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 40, size=rng.integers(0, 12)) for _ in range(n)]


def test_make_sequences_exact_small_case() -> None:
    examples = [_ex(4, 5, 6, 7, 8), _ex(), _ex(9), _ex(10, 11, 12)]
    inputs, targets = make_sequences(examples, 3, bos_id=BOS, pad_id=PAD)
    np.testing.assert_array_equal(
        inputs,
        [
            [BOS, 4, 5],  # message 1 starts with BOS ...
            [6, 7, PAD],  # ... and continues on the next row, right-padded
            [BOS, PAD, PAD],  # the empty message yields no row; a one-word message
            [BOS, 10, 11],  # exactly seq_len words: one full row
        ],
    )
    np.testing.assert_array_equal(
        targets,
        [
            [4, 5, 6],
            [7, 8, PAD],
            [9, PAD, PAD],
            [10, 11, 12],
        ],
    )


def test_make_sequences_dtype_int32_and_shape() -> None:
    inputs, targets = make_sequences([_ex(4, 5, 6, 7)], 2, bos_id=BOS, pad_id=PAD)
    assert inputs.dtype == np.int32
    assert targets.dtype == np.int32
    assert inputs.shape == targets.shape == (2, 2)


def test_make_sequences_custom_pad_and_bos() -> None:
    inputs, targets = make_sequences([_ex(4, 5)], 4, bos_id=9, pad_id=7)
    np.testing.assert_array_equal(inputs, [[9, 4, 7, 7]])
    np.testing.assert_array_equal(targets, [[4, 5, 7, 7]])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("seq_len", [1, 3, 5, 20])
def test_make_sequences_nonpad_targets_equal_total_words(seed: int, seq_len: int) -> None:
    examples = _random_corpus(seed)
    inputs, targets = make_sequences(examples, seq_len, bos_id=BOS, pad_id=PAD)
    assert int((targets != PAD).sum()) == sum(len(e) for e in examples)
    assert int((inputs != PAD).sum()) == sum(len(e) for e in examples)
    assert len(targets) == sum(-(-len(e) // seq_len) for e in examples)


@pytest.mark.parametrize("seq_len", [1, 4, 7])
def test_make_sequences_rows_reassemble_messages(seq_len: int) -> None:
    examples = _random_corpus(5)
    inputs, targets = make_sequences(examples, seq_len, bos_id=BOS, pad_id=PAD)
    row = 0
    for example in examples:
        rows = -(-len(example) // seq_len)
        got_targets = targets[row : row + rows].ravel()
        got_inputs = inputs[row : row + rows].ravel()
        n = len(example)
        np.testing.assert_array_equal(got_targets[:n], example)
        np.testing.assert_array_equal(got_inputs[:n], np.concatenate(([BOS], example[:-1]))[:n])
        assert (got_targets[n:] == PAD).all()  # padding only at the end of a message's last row
        row += rows
    assert row == len(targets)


def test_make_sequences_no_examples() -> None:
    inputs, targets = make_sequences([], 4, bos_id=BOS, pad_id=PAD)
    assert inputs.shape == targets.shape == (0, 4)
    assert inputs.dtype == targets.dtype == np.int32


def test_make_sequences_only_empty_messages() -> None:
    inputs, targets = make_sequences([_ex(), _ex()], 4, bos_id=BOS, pad_id=PAD)
    assert inputs.shape == targets.shape == (0, 4)


def test_make_sequences_does_not_modify_examples() -> None:
    examples = [_ex(4, 5, 6), _ex(7)]
    copies = [e.copy() for e in examples]
    make_sequences(examples, 2, bos_id=BOS, pad_id=PAD)
    for a, b in zip(examples, copies, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seq_len", [0, -2])
def test_make_sequences_bad_seq_len_rejected(seq_len: int) -> None:
    with pytest.raises(ValueError, match=f"seq_len must be positive, got {seq_len}"):
        make_sequences([_ex(4, 5)], seq_len, bos_id=BOS, pad_id=PAD)


def test_length_buckets_example() -> None:
    targets = np.zeros((4, 20), dtype=np.int32)
    targets[0, :3], targets[2, :], targets[3, :5] = 5, 7, 9  # lengths 3, 0, 20, 5
    got = length_buckets(targets, (4, 10, 20), pad_id=0)
    assert [(rows.tolist(), width) for rows, width in got] == [([0, 1], 4), ([3], 10), ([2], 20)]


def test_length_buckets_length_counts_to_the_last_word_and_width_is_inclusive() -> None:
    targets = np.full((2, 6), 9, dtype=np.int32)
    targets[0, 4:] = 0  # length 4: exactly the first width
    targets[1, [1, 5]] = 0  # a pad inside the row: length still 5
    got = length_buckets(targets, (4, 6), pad_id=0)
    assert [(rows.tolist(), width) for rows, width in got] == [([0], 4), ([1], 6)]


@pytest.mark.parametrize("widths", [(), (4, 10), (10, 4, 20), (0, 20), (4, 4, 20), (4, 30)])
def test_length_buckets_bad_widths_named(widths: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"widths must increase from >= 1 to the rows' width 20, got"):
        length_buckets(np.zeros((1, 20), dtype=np.int32), widths, pad_id=0)
